"""Loads the demo: the simulator's "Demo Retail" account with its numbers and templates, a marketer
and a staff login with freshly generated passwords, and a sample contact list to upload.

Safe to run again: rows are upserted and the passwords are regenerated and printed each time.
"""

import csv
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from templates_app.models import WhatsAppAccount
from templates_app.services.sync import phones_upsert, templates_upsert
from titanflow.simulator.demo import DEMO_WABA
from titanflow.simulator.graph import phone_fields, template_fields
from titanflow.simulator.world import default_world


def _phone(i: int) -> str:
    """National and international formats mixed, as real spreadsheets are."""
    number = f"{2000000 + i:07d}"
    return f"050 {number[:3]} {number[3:]}" if i % 2 else f"+971 50 {number}"


FIRST_NAMES = ["Ana", "Omar", "Layla", "Yusuf", "Maya", "Karim", "Sara", "Rami", "Noor", "Hadi"]
CITIES = ["Dubai", "Abu Dhabi", "Sharjah", "Ajman", "Al Ain"]


class Command(BaseCommand):
    help = "Load the demo account, users and a sample contact list (run again to reset passwords)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=300, help="rows in the sample CSV")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="where TitanFlow is served (printed)"
        )

    def handle(self, *args, contacts: int, url: str, **options):
        with transaction.atomic():
            account = self._account()
            marketer_password = self._user("marketer", staff=False)
            admin_password = self._user("admin", staff=True)
        sample = self._sample_csv(contacts)
        self.stdout.write(
            self.style.SUCCESS("TitanFlow demo is loaded.")
            + f"\n  Open            {url}"
            + f"\n  Marketer login  marketer / {marketer_password}"
            + f"\n  Staff login     admin / {admin_password}  ({url}admin/)"
            + f"\n  Account         {account.name}: {account.phones.count()} numbers,"
            f" {account.templates.count()} templates" + f"\n  Sample list     {sample}\n"
        )

    def _account(self) -> WhatsAppAccount:
        world = default_world()
        account, _ = WhatsAppAccount.objects.update_or_create(
            waba_id=DEMO_WABA,
            defaults={"name": world.accounts[DEMO_WABA].name, "access_token": "demo-token"},
        )
        phones_upsert(
            account=account, items=[phone_fields(p, None) for p in world.phones_of(DEMO_WABA)]
        )
        templates_upsert(
            account=account,
            items=[template_fields(t, None) for t in world.templates_of(DEMO_WABA)],
        )
        return account

    def _user(self, username: str, *, staff: bool) -> str:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = staff
        user.set_password(password)
        user.save()
        if not staff:
            user.groups.add(Group.objects.get_or_create(name=settings.MARKETER_GROUP)[0])
        return password

    def _sample_csv(self, rows: int) -> Path:
        path = settings.VAR_DIR / "demo" / "contacts.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            header = ["phone", "name", "city", "discount", "order", "image_url", "coupon", "link"]
            writer.writerow(header)
            for i in range(rows):
                writer.writerow(
                    [
                        _phone(i),
                        FIRST_NAMES[i % len(FIRST_NAMES)],
                        CITIES[i % len(CITIES)],
                        f"{10 + (i % 4) * 5}%",
                        f"A-{10000 + i}",
                        "https://shop.example.com/img/spring.jpg",
                        f"SAVE{10 + i % 20}",
                        f"https://shop.example.com/sale?c=SAVE{10 + i % 20}",
                    ]
                )
        return path

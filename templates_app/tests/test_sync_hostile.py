"""A listing value that does not fit costs its row, never the sync of the account."""

import pytest

from templates_app.models import MessageTemplate, PhoneNumber
from templates_app.services import sync
from templates_app.services.progress import SyncProgress
from templates_app.services.sync import account_sync, phones_upsert, templates_upsert
from templates_app.tests.conftest import build_world, template_item
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
LONG_DISPLAY = "+971 50 777 0000 ext. 1234567890 (main line)"


def test_an_over_long_display_number_is_cut_and_the_sync_finishes(meta, account):
    world = build_world(templates=2)
    world["phones"][0]["display_phone_number"] = LONG_DISPLAY
    meta.set_world(world, replace=True)
    progress = SyncProgress.start(account_id=account.pk)

    result = account_sync(account=account, progress=progress)

    assert (result.ok, result.phones, result.templates) == (True, 2, 2)
    cut = PhoneNumber.objects.get(phone_number_id="200000000000770")
    assert cut.display_phone_number == LONG_DISPLAY[:32]
    state = progress.read()
    assert state["state"] == "done"
    assert "display_phone_number cut to 32 characters" in state["message"]


def test_a_number_without_a_usable_id_is_refused_and_the_others_stored():
    account = AccountFactory()
    items = [
        {"display_phone_number": "+1 555 000 0001"},
        {"id": "9" * 100, "display_phone_number": "+1 555 000 0002"},
        {"id": "200000000000801", "display_phone_number": "+1 555 000 0003", "throughput": "HIGH"},
        "not a number",
    ]
    notes = []

    assert phones_upsert(account=account, items=items, notes=notes) == 1

    stored = PhoneNumber.objects.get(account=account)
    assert (stored.phone_number_id, stored.throughput_level) == ("200000000000801", "STANDARD")
    assert len(notes) == 3


def test_templates_with_unusable_names_are_refused_and_wide_values_cut():
    account = AccountFactory()
    items = [
        template_item(0, name="n" * 600),
        template_item(1, language={"code": "en_US"}),
        template_item(2, category="MARKETING" * 10, status="APPROVED\x00"),
        template_item(3, id="1" * 100, parameter_format="POSITIONAL" * 3),
    ]

    assert templates_upsert(account=account, items=items) == 2

    cut = MessageTemplate.objects.get(name="promo_0002")
    assert (cut.category, cut.status) == (("MARKETING" * 10)[:32], "APPROVED")
    odd = MessageTemplate.objects.get(name="promo_0003")
    assert (odd.meta_template_id, odd.parameter_format) == ("", "POSITIONALPO")


def test_a_sync_that_breaks_says_failed_at_once(meta, account, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sync, "phones_upsert", broken)
    progress = SyncProgress.start(account_id=account.pk)

    with pytest.raises(RuntimeError):
        account_sync(account=account, progress=progress)

    state = progress.read()
    assert state["state"] == "failed" and "disk full" in state["message"]

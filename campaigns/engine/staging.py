"""A simulator world and the matching campaign in the database, for the end-to-end tests and
`manage.py bench`: N numbers, a few templates with media and variables, M contacts (by COPY)."""

from django.db import connection, transaction
from django.utils import timezone

from campaigns.counters import campaign_recount
from campaigns.models import Campaign, CampaignSender, SenderTemplate
from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from titanflow.whatsapp.payloads import parse_slots

WABA = "190000000000001"
TOKEN = "stage-token"
PROMO_COMPONENTS = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}},
    {"type": "BODY", "text": "{{1}}, enjoy {{2}} off this week!"},
]
PROMO_MAPPING = {
    "header.media": {"column": "image"},
    "body.1": {"column": "name"},
    "body.2": {"column": "offer"},
}


def phone_number_id(index: int) -> str:
    return f"29{index:013d}"


def world_dict(*, numbers: int, mps: int = 80, templates=("promo_a", "promo_b", "promo_c")):
    return {
        "accounts": [{"waba_id": WABA, "name": "Stage", "access_token": TOKEN}],
        "phones": [
            {
                "phone_number_id": phone_number_id(i),
                "waba_id": WABA,
                "display_phone_number": f"+971 50 900 {i:04d}",
                "max_mps": mps,
            }
            for i in range(1, numbers + 1)
        ],
        "templates": [
            {
                "id": f"39{i:013d}",
                "waba_id": WABA,
                "name": name,
                "language": "en_US",
                "components": PROMO_COMPONENTS,
            }
            for i, name in enumerate(templates, start=1)
        ],
    }


def campaign_stage(*, world: dict, owner, contacts: int, name: str = "Stage") -> Campaign:
    """Mirrors `world` in the database and builds a ready campaign: every number a sender with
    every template in the world's order, `contacts` recipients +9715xxxxxxxx."""
    with transaction.atomic():
        account, _ = WhatsAppAccount.objects.update_or_create(
            waba_id=WABA, defaults={"name": "Stage", "access_token": TOKEN}
        )
        phones = [_phone(account, item) for item in world["phones"]]
        templates = [_template(account, item) for item in world["templates"]]
        campaign = Campaign.objects.create(
            name=name,
            owner=owner,
            status=Campaign.Status.READY,
            variable_mapping={str(t.pk): PROMO_MAPPING for t in templates},
            columns=["phone", "name", "offer", "image"],
            phone_column="phone",
        )
        for phone in phones:
            sender = CampaignSender.objects.create(campaign=campaign, phone=phone)
            SenderTemplate.objects.bulk_create(
                SenderTemplate(sender=sender, template=t, position=i)
                for i, t in enumerate(templates)
            )
        contacts_copy(campaign_id=campaign.pk, count=contacts)
        campaign_recount(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def _phone(account, item: dict) -> PhoneNumber:
    phone, _ = PhoneNumber.objects.update_or_create(
        phone_number_id=item["phone_number_id"],
        defaults={
            "account": account,
            "display_phone_number": item["display_phone_number"],
            "max_mps": item["max_mps"],
            "status": "CONNECTED",
        },
    )
    return phone


def _template(account, item: dict) -> MessageTemplate:
    slots = [slot.to_dict() for slot in parse_slots(item["components"])]
    template, _ = MessageTemplate.objects.update_or_create(
        account=account,
        name=item["name"],
        language=item["language"],
        defaults={
            "meta_template_id": item["id"],
            "category": "MARKETING",
            "approved_category": "MARKETING",
            "status": MessageTemplate.Status.APPROVED,
            "components": item["components"],
            "slots": slots,
            "status_changed_at": timezone.now(),
        },
    )
    return template


def recipient(index: int) -> str:
    return f"+9715{index:08d}"


def contacts_copy(*, campaign_id: int, count: int) -> None:
    """COPY keeps 200,000 contacts a matter of seconds and constant memory."""
    sql = (
        "COPY campaigns_contact (campaign_id, phone, name, variables, state, attempts, payload, "
        "last_error, skip_reason, row_number) FROM STDIN"
    )
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for i in range(1, count + 1):
            phone = recipient(i)
            variables = (
                f'{{"phone": "{phone}", "name": "Guest {i}", "offer": "{10 + i % 40}%", '
                f'"image": "https://cdn.example.com/p/{i}.jpg"}}'
            )
            copy.write_row(
                (campaign_id, phone, f"Guest {i}", variables, "pending", 0, "", "", "", i)
            )


BENCH_TABLES = (
    "campaigns_contact",
    "campaigns_message",
    "webhooks_webhookevent",
    "webhooks_pendingstatus",
)


def bench_tables_vacuum() -> None:
    """Reclaims the rows a benchmark wrote and deleted, so the next run measures the same
    tables rather than their dead rows (a Postgres with autovacuum off keeps them for ever).
    VACUUM cannot run inside a transaction: there it is skipped."""
    if connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        for table in BENCH_TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")

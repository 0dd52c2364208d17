"""The business portfolio's messaging limit, as Meta's webhooks name it."""

import pytest

from templates_app.models import WhatsAppAccount
from templates_app.services.events import AssetEvent, capability_event_apply

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        ("TIER_250", 250),
        ("TIER_2K", 2000),
        ("10K", 10_000),
        (100000, 100_000),
        ("TIER_UNLIMITED", None),
    ],
)
def test_meta_tiers_are_read_as_recipients_per_day(raw, limit):
    assert WhatsAppAccount.limit_from_tier(raw) == (True, limit)


def test_business_capability_update_sets_the_portfolio_limit():
    account = WhatsAppAccount.objects.create(waba_id="77", name="Shop", access_token="t")
    event = AssetEvent(
        waba_id="77",
        field="business_capability_update",
        value={"max_daily_conversations_per_business": "TIER_2K"},
    )
    assert capability_event_apply(event=event)
    account.refresh_from_db()
    assert account.messaging_limit == 2000

from datetime import UTC, datetime
from decimal import Decimal

import phonenumbers
import pytest

from campaigns.models import Contact, Rate
from campaigns.services.cost import campaign_cost_estimate, campaign_spend, rate_card_seed
from campaigns.services.statuses import StatusUpdate, statuses_apply
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
# One number per market the rate card names, and three the card prices at its "*" rate: a
# Canadian (+1 like the US), one from Guernsey (+44 like GB) and a French one.
KNOWN_LIST = [
    "+971501234567",
    "+971559876543",
    "+966501234567",
    "+919812345678",
    "+12025550143",
    "+14165550123",
    "+447400123456",
    "+447911123456",
    "+4915123456789",
    "+5511987654321",
    "+201001234567",
    "+33612345678",
]


def _expected(category: str, phones: list[str]) -> Decimal:
    """The rate card's sum, one recipient at a time, placed by phonenumbers itself."""
    total = Decimal(0)
    for phone in phones:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
        rate = Rate.objects.filter(category=category, market=region).first()
        total += (rate or Rate.objects.get(category=category, market="*")).price
    return total


def _sent(campaign, phones):
    messages = []
    for phone in phones:
        contact = ContactFactory(campaign=campaign, phone=phone, state=Contact.State.SENT)
        messages.append(MessageFactory(contact=contact, campaign=campaign))
    return messages


def test_spend_equals_the_billable_statuses_at_the_rate_card():
    campaign = CampaignFactory()
    messages = _sent(campaign, KNOWN_LIST)
    billed, free = messages[:8], messages[8:]
    statuses_apply(
        updates=[
            *(
                StatusUpdate(m.wamid, "delivered", T0, billable=True, pricing_category="MARKETING")
                for m in billed
            ),
            *(
                StatusUpdate(m.wamid, "delivered", T0, billable=False, pricing_category="SERVICE")
                for m in free
            ),
        ]
    )
    spend = campaign_spend(campaign=campaign)
    assert spend.messages == 8
    assert spend.totals == {"USD": _expected("MARKETING", KNOWN_LIST[:8])}


def test_a_later_status_does_not_bill_a_message_twice():
    campaign = CampaignFactory()
    (message,) = _sent(campaign, ["+971501234567"])
    for status in ("sent", "delivered", "read", "delivered"):
        update = StatusUpdate(message.wamid, status, T0, billable=True, pricing_category="UTILITY")
        statuses_apply(updates=[update])
    message.refresh_from_db()
    assert (message.billable, message.pricing_category) == (True, "UTILITY")
    assert campaign_spend(campaign=campaign).totals == {"USD": Decimal("0.0157")}


def test_spend_follows_the_rate_an_admin_edits():
    campaign = CampaignFactory()
    (message,) = _sent(campaign, ["+33612345678"])
    read = StatusUpdate(message.wamid, "read", T0, billable=True, pricing_category="MARKETING")
    statuses_apply(updates=[read])
    Rate.objects.filter(category="MARKETING", market="*").update(price=Decimal("0.5"))
    assert campaign_spend(campaign=campaign).totals == {"USD": Decimal("0.5")}


def _ready(category: str):
    campaign = CampaignFactory()
    phone = PhoneFactory()
    sender = SenderFactory(campaign=campaign, phone=phone)
    template = TemplateFactory(account=phone.account, category=category, approved_category=category)
    SenderTemplateFactory(sender=sender, template=template, position=0)
    for number in KNOWN_LIST:
        ContactFactory(campaign=campaign, phone=number)
    return campaign


def test_the_estimate_equals_the_rate_cards_sum_for_a_known_list():
    estimate = campaign_cost_estimate(campaign=_ready("UTILITY"))
    assert estimate.messages == len(KNOWN_LIST)
    assert estimate.totals == {"USD": _expected("UTILITY", KNOWN_LIST)}
    by_market = {line.market: line.recipients for line in estimate.lines}
    assert by_market == {
        "AE": 2, "SA": 1, "IN": 1, "US": 1, "GB": 1, "DE": 1, "BR": 1, "EG": 1, "*": 3
    }  # fmt: skip


def test_a_marketing_estimate_leaves_out_us_numbers_meta_will_not_deliver():
    estimate = campaign_cost_estimate(campaign=_ready("MARKETING"))
    sendable = [p for p in KNOWN_LIST if p != "+12025550143"]
    assert estimate.messages == len(sendable)
    assert estimate.totals == {"USD": _expected("MARKETING", sendable)}


def test_seeding_the_rate_card_again_adds_only_missing_rows_and_keeps_edits():
    Rate.objects.filter(category="MARKETING", market="AE").update(price=Decimal("0.9"))
    Rate.objects.filter(category="UTILITY", market="AE").delete()
    assert rate_card_seed() == 1
    assert Rate.objects.get(category="MARKETING", market="AE").price == Decimal("0.9")

"""The deliverability guard end to end: a real worker, Redis, Postgres, and the simulator
enforcing Meta's rules (portfolio tier, quality, per-user cap) with signed webhooks."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from campaigns.engine.staging import WABA, phone_number_id
from campaigns.models import Campaign, Contact, Message, Rate
from campaigns.services.cost import rate_card_seed
from campaigns.services.lifecycle import campaign_launch, campaign_stats
from templates_app.models import PhoneNumber, WhatsAppAccount
from tests.e2e.conftest import MPS, NUMBERS, simulator_for, wait_until
from tests.e2e.test_engine_e2e import _accepted, _finished, assert_each_contact_once
from webhooks.processor import deliveries_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PORTFOLIO_LIMIT = 120
HOLD_POLL_S = "1"


class ShiftedClock:
    """The simulator's monotonic clock, which the test can move a day ahead."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def clock():
    return ShiftedClock()


@pytest.fixture
def meta(live_server, engine_settings, clock):
    """The conftest's simulator, with the portfolio's limit enforced as Meta does."""
    with simulator_for(live_server, engine_settings, portfolio_limits=True, clock=clock) as handle:
        yield handle


def test_a_number_turned_red_mid_campaign_stops_and_its_contacts_finish_on_the_others(
    meta, worker, staged
):
    worker(ENGINE_HOLD_POLL_SECONDS=HOLD_POLL_S)
    campaign = campaign_launch(campaign=staged(contacts=900))
    flagged = phone_number_id(1)
    wait_until(lambda: _accepted(meta) >= 90, timeout=20, what="90 sends")

    meta.phone_event(phone_number_id=flagged, event="FLAGGED")
    wait_until(
        lambda: PhoneNumber.objects.get(phone_number_id=flagged).quality_rating == "RED",
        timeout=10,
        what="the quality webhook to be processed",
    )
    at_red = meta.stats()["accepted_by_phone"].get(flagged, 0)
    campaign = _finished(campaign)

    assert_each_contact_once(meta, campaign)
    by_phone = meta.stats()["accepted_by_phone"]
    # At most the slice already under way when the webhook landed (0.5 s at 50/s).
    assert by_phone[flagged] - at_red <= MPS
    assert sum(by_phone.values()) == 900
    assert by_phone[flagged] < 900 / NUMBERS - 100  # its share went to the other two
    sender = campaign.senders.get(phone__phone_number_id=flagged)
    assert sender.state == "active"  # held, not stopped for good: GREEN sends again
    assert "quality RED" in sender.hold_reason


def test_spend_equals_the_billable_statuses_at_the_rate_card(meta, worker, staged):
    rate_card_seed()  # an earlier transactional test's flush emptied the seeded table
    meta.set_scenario({"rules": [{"error_code": 131049, "share": 0.2, "delivery": "webhook"}]})
    worker(ENGINE_MARKETING_CAP_RETRIES="0")
    campaign = _finished(campaign_launch(campaign=staged(contacts=200)))
    messages = Message.objects.filter(campaign=campaign)

    def settled():
        deliveries_process()  # what beat's process-webhooks does every 5 s: early statuses wait
        return not messages.filter(status="sent").exists()

    wait_until(settled, timeout=30, what="every message's last status to be processed")
    delivered = messages.filter(status__in=["delivered", "read"])
    capped = messages.filter(status="failed", error_code=131049).count()
    assert 15 <= capped <= 70  # about a fifth, the same recipients on every run
    assert delivered.count() == 200 - capped
    assert not delivered.filter(billable=None).exists()

    spend = campaign_stats(campaign=campaign)["spend"]
    rate = Rate.objects.get(category="MARKETING", market="AE").price  # every recipient is +971
    assert spend["messages"] == 200 - capped  # a failed message is not billed
    assert spend["totals"] == [{"currency": "USD", "amount": str(rate * (200 - capped))}]
    assert Decimal(spend["totals"][0]["amount"]) > 0


def test_a_campaign_over_the_portfolio_limit_holds_then_completes_when_the_window_frees(
    meta, worker, staged, clock
):
    staged_campaign = staged(contacts=PORTFOLIO_LIMIT + 60)
    WhatsAppAccount.objects.filter(waba_id=WABA).update(messaging_limit=PORTFOLIO_LIMIT)
    world = meta.world()
    world["accounts"][0]["messaging_limit"] = str(PORTFOLIO_LIMIT)
    meta.set_world(world)
    worker(ENGINE_HOLD_POLL_SECONDS=HOLD_POLL_S)
    campaign = campaign_launch(campaign=staged_campaign)

    def held():
        return Campaign.objects.filter(pk=campaign.pk).exclude(hold_reason="").exists()

    wait_until(held, timeout=20, what="the campaign to hold at the portfolio's limit")
    time.sleep(2)  # two hold polls: nothing more goes out while the window is full
    assert _accepted(meta) == PORTFOLIO_LIMIT
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING

    # A day passes, for TitanFlow's window (the messages' times) and for the simulator's.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE campaigns_message SET sent_at = sent_at - interval '24 hours'")
    clock.offset += timedelta(hours=24).total_seconds()
    campaign = _finished(campaign)

    assert_each_contact_once(meta, campaign)
    assert campaign.failed_count == 0  # Meta never had to refuse one (131064 over its limit)
    assert not Contact.objects.filter(campaign=campaign, last_error_code=131064).exists()
    assert campaign.hold_reason == ""

"""The deliverability guard against the in-process Meta simulator, one slice at a time."""

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.engine.slice import sender_run_slice
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.models import Campaign, Contact, Message
from campaigns.services.lifecycle import campaign_launch, messages_held
from campaigns.tests.engine_setup import campaign_drive, engine_test_setup
from templates_app.models import PhoneNumber, WhatsAppAccount
from titanflow.simulator.testing import start_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def engine_settings(settings, monkeypatch):
    engine_test_setup(settings, monkeypatch)


@pytest.fixture
def sim(settings):
    handle = start_simulator(world=world_dict(numbers=2, mps=200))
    settings.WHATSAPP_GRAPH_URL = handle.url
    yield handle
    handle.stop()


def _staged(owner, *, contacts, **fields):
    campaign = campaign_stage(world=world_dict(numbers=2, mps=200), owner=owner, contacts=contacts)
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    return campaign


def _drive(campaign, *, rounds=30):
    return campaign_drive(campaign, rounds=rounds)


def test_a_campaign_larger_than_the_portfolio_limit_holds_then_completes_as_the_window_frees(
    sim, marketer
):
    campaign = _staged(marketer, contacts=30)
    WhatsAppAccount.objects.update(messaging_limit=12)
    campaign = _drive(campaign_launch(campaign=campaign), rounds=6)

    assert campaign.status == Campaign.Status.RUNNING
    assert Message.objects.filter(campaign=campaign).count() == 12
    assert campaign.hold_reason.startswith("Held: the portfolio's messaging limit of 12")
    assert campaign.held_until is not None
    holds = campaign.events.filter(kind="portfolio_hold")
    assert [e.text[:40] for e in holds] == ["Held: the portfolio's messaging limit of"]
    assert "Next room at" in holds.get().text

    # The test's clock: a day passes for what was sent, so the rolling window frees it.
    Message.objects.update(sent_at=timezone.now() - timedelta(hours=25))
    campaign = _drive(campaign, rounds=6)
    Message.objects.update(sent_at=timezone.now() - timedelta(hours=25))
    campaign = _drive(campaign, rounds=6)

    assert campaign.status == Campaign.Status.COMPLETED
    assert Message.objects.filter(campaign=campaign).count() == 30
    assert set(sim.stats()["accepted_by_recipient"].values()) == {1}
    assert campaign.hold_reason == ""


def test_a_red_number_stops_and_its_contacts_finish_on_the_other(sim, marketer):
    campaign = _staged(marketer, contacts=20)
    red, green = PhoneNumber.objects.order_by("id")
    PhoneNumber.objects.filter(pk=red.pk).update(quality_rating="RED")
    campaign = _drive(campaign_launch(campaign=campaign))

    assert campaign.status == Campaign.Status.COMPLETED
    assert Message.objects.filter(campaign=campaign, phone=green).count() == 20
    assert not Message.objects.filter(phone=red).exists()
    held = campaign.senders.get(phone=red)
    assert held.state == "active"
    assert "quality RED" in held.hold_reason


def test_nothing_is_sent_after_the_deadline_and_the_rest_expire(sim, marketer):
    campaign = _staged(marketer, contacts=10, deadline=timezone.now() - timedelta(seconds=1))
    campaign = _drive(campaign_launch(campaign=campaign))

    assert campaign.status == Campaign.Status.COMPLETED
    assert not Message.objects.filter(campaign=campaign).exists()
    assert set(Contact.objects.filter(campaign=campaign).values_list("skip_reason", flat=True)) == {
        "expired"
    }
    assert campaign.skipped_count == 10


def test_quiet_hours_hold_a_recipient_whose_local_time_is_inside_them(sim, marketer):
    campaign = _staged(marketer, contacts=4)
    london = Contact.objects.filter(campaign=campaign).order_by("id").first()
    Contact.objects.filter(pk=london.pk).update(phone="+442071234567")
    hour = timezone.now().astimezone(ZoneInfo("Europe/London")).hour
    # Two quiet hours around London's present; Dubai (+971) is four hours ahead, outside them.
    Campaign.objects.filter(pk=campaign.pk).update(
        quiet_start=time(hour), quiet_end=time((hour + 2) % 24)
    )
    campaign = _drive(campaign_launch(campaign=campaign), rounds=3)

    london.refresh_from_db()
    assert london.state == "pending"
    assert london.not_before > timezone.now()
    assert "Quiet hours" in london.last_error
    assert Message.objects.filter(campaign=campaign).count() == 3


def _meta_cap_once(sim):
    sim.set_scenario({"rules": [{"error_code": 131049, "recipient": "971500000001", "count": 1}]})


def test_131049_is_retried_after_the_delay_not_sooner(sim, marketer):
    _meta_cap_once(sim)
    campaign = _drive(campaign_launch(campaign=_staged(marketer, contacts=3)), rounds=3)

    capped = Contact.objects.get(campaign=campaign, phone="+971500000001")
    assert capped.state == "pending"
    assert capped.not_before >= timezone.now() + timedelta(hours=23, minutes=59)
    assert capped.last_error.startswith("Held by Meta's per-user limit")

    # The test's clock: the day passes for this contact.
    Contact.objects.filter(pk=capped.pk).update(not_before=timezone.now())
    campaign = _drive(campaign)
    capped.refresh_from_db()
    assert capped.state == "sent"
    assert campaign.status == Campaign.Status.COMPLETED


def test_131049_is_not_retried_after_the_deadline(sim, marketer):
    _meta_cap_once(sim)
    staged = _staged(marketer, contacts=3, deadline=timezone.now() + timedelta(hours=2))
    campaign = _drive(campaign_launch(campaign=staged))

    capped = Contact.objects.get(campaign=campaign, phone="+971500000001")
    assert capped.state == "failed"
    assert capped.last_error.startswith("Held by Meta's per-user limit")
    assert campaign.status == Campaign.Status.COMPLETED


def test_the_campaign_page_says_it_is_held_at_the_portfolio_limit(marketer_client, marketer):
    campaign = _staged(marketer, contacts=2)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.RUNNING,
        hold_reason="Held: the portfolio's messaging limit of 250 recipients per 24 h is reached.",
        held_until=timezone.now() + timedelta(hours=3),
    )
    page = marketer_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "messaging limit of 250" in page
    assert "Next room at" in page


def test_yellow_halves_a_numbers_measured_rate(settings, marketer):
    settings.ENGINE_SLICE_SECONDS = 2.0
    handle = start_simulator(world=world_dict(numbers=2, mps=20))
    settings.WHATSAPP_GRAPH_URL = handle.url
    try:
        staged = campaign_stage(world=world_dict(numbers=2, mps=20), owner=marketer, contacts=200)
        yellow, green = PhoneNumber.objects.order_by("id")
        PhoneNumber.objects.filter(pk=yellow.pk).update(quality_rating="YELLOW")
        campaign = campaign_launch(campaign=staged)
        sent = {}
        for sender in campaign.senders.order_by("id"):
            sent[sender.phone_id] = sender_run_slice(
                campaign_id=campaign.pk, sender_id=sender.pk
            ).sent
    finally:
        handle.stop()

    assert sent[green.pk] >= 30
    assert 0.35 <= sent[yellow.pk] / sent[green.pk] <= 0.65


def test_sends_meta_holds_for_quality_assessment_count_as_sent_not_failed(sim, marketer):
    rule = {"message_status": "held_for_quality_assessment", "template": "promo_a"}
    sim.set_scenario({"rules": [rule]})
    campaign = _drive(campaign_launch(campaign=_staged(marketer, contacts=6)))

    assert (campaign.status, campaign.sent_count, campaign.failed_count) == ("completed", 6, 0)
    held = Message.objects.filter(campaign=campaign).values_list("accepted_status", flat=True)
    assert list(held) == ["held_for_quality_assessment"] * 6
    assert messages_held(campaign=campaign) == {"held_for_quality_assessment": 6, "paused": 0}

"""The engine against the in-process Meta simulator, one slice at a time (no Celery here; the
end-to-end suite in tests/e2e runs real workers)."""

import json

import pytest

from campaigns.engine import dispatch
from campaigns.engine import redis as engine_redis
from campaigns.engine.claims import claims_reap
from campaigns.engine.slice import sender_run_slice
from campaigns.engine.staging import campaign_stage, phone_number_id, world_dict
from campaigns.models import Campaign, CampaignSender, Contact, Message, OptOut, SenderTemplate
from campaigns.services.lifecycle import campaign_launch, campaign_pause, campaign_resume
from campaigns.tests.engine_setup import campaign_drive, engine_test_setup
from templates_app.models import MessageTemplate
from titanflow.simulator.testing import start_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def engine_settings(settings, monkeypatch):
    queued = []
    engine_test_setup(settings, monkeypatch, on_queue=lambda *args: queued.append(args))
    settings.ENGINE_AMBIGUOUS_GRACE_SECONDS = 60
    return queued


@pytest.fixture
def meta(settings):
    def start(*, numbers=3, mps=200, scenario=None, **options):
        handle = start_simulator(world=world_dict(numbers=numbers, mps=mps), **options)
        if scenario:
            handle.set_scenario({"rules": scenario})
        settings.WHATSAPP_GRAPH_URL = handle.url
        started.append(handle)
        return handle

    started = []
    yield start
    for handle in started:
        handle.stop()


def _launched(owner, *, numbers=3, contacts=30, mps=200):
    campaign = campaign_stage(
        world=world_dict(numbers=numbers, mps=mps), owner=owner, contacts=contacts
    )
    return campaign_launch(campaign=campaign)


def _drive(campaign, *, rounds=60):
    return campaign_drive(campaign, rounds=rounds)


def _sent_once_each(meta, campaign):
    by_recipient = meta.stats()["accepted_by_recipient"]
    phones = {p.lstrip("+") for p in campaign.contacts.values_list("phone", flat=True)}
    return set(by_recipient) == phones and set(by_recipient.values()) == {1}


def test_a_campaign_reaches_every_contact_exactly_once_and_completes(meta, marketer):
    sim = meta()
    campaign = _drive(_launched(marketer, contacts=40))

    assert campaign.status == Campaign.Status.COMPLETED
    assert _sent_once_each(sim, campaign)
    assert campaign.sent_count == 40
    assert Message.objects.filter(campaign=campaign).count() == 40
    assert set(Contact.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        "sent"
    }


def test_the_stored_request_body_is_what_meta_received(meta, marketer):
    sim = meta(numbers=1)
    campaign = _drive(_launched(marketer, numbers=1, contacts=3))

    for message in Message.objects.filter(campaign=campaign).select_related("contact"):
        [received] = sim.messages(message.recipient.lstrip("+"))
        assert received == json.loads(message.request_body)
        assert received["biz_opaque_callback_data"] == f"c:{message.contact_id}"
        assert (
            received["template"]["components"][0]["parameters"][0]["image"]["link"]
            == (message.contact.variables["image"])
        )
        assert message.contact.payload == message.request_body


def test_132001_moves_the_sender_to_its_next_template_in_saved_order(meta, marketer):
    sim = meta(numbers=1, scenario=[{"template": "promo_a", "error_code": 132001}])
    campaign = _drive(_launched(marketer, numbers=1, contacts=10))

    assert campaign.status == Campaign.Status.COMPLETED
    assert _sent_once_each(sim, campaign)
    assert sim.stats()["accepted_by_template"] == {"promo_b": 10}
    sender = campaign.senders.get()
    assert sender.current_template.name == "promo_b"
    failed = SenderTemplate.objects.get(sender=sender, template__name="promo_a")
    assert failed.failed_code == 132001


def test_132015_marks_the_template_paused_for_everyone(meta, marketer):
    meta(numbers=2, scenario=[{"template": "promo_a", "error_code": 132015}])
    campaign = _drive(_launched(marketer, numbers=2, contacts=10))

    assert campaign.status == Campaign.Status.COMPLETED
    assert MessageTemplate.objects.get(name="promo_a").status == "PAUSED"
    assert not Message.objects.filter(campaign=campaign, template__name="promo_a").exists()


def test_a_number_meta_unregistered_stops_and_the_others_send_its_contacts_unchanged(
    meta, marketer
):
    broken = phone_number_id(2)
    sim = meta(mps=20, scenario=[{"phone_number_id": broken, "error_code": 133010, "after": 2}])
    campaign = _drive(_launched(marketer, contacts=60, mps=20))

    assert campaign.status == Campaign.Status.COMPLETED
    assert _sent_once_each(sim, campaign)
    sender = campaign.senders.get(phone__phone_number_id=broken)
    assert sender.state == "exhausted"
    assert sender.exhausted_code == 133010
    moved = Contact.objects.filter(campaign=campaign, last_error_code=133010)
    assert moved.exists()
    for contact in moved:
        message = contact.messages.get()
        assert message.phone.phone_number_id != broken
        [received] = sim.messages(contact.phone.lstrip("+"))
        assert json.dumps(received, separators=(",", ":"), ensure_ascii=False) == contact.payload
        assert (
            received["template"]["components"][1]["parameters"][1]["text"]
            == (contact.variables["offer"])
        )


def test_every_number_exhausted_pauses_with_a_reason_and_resume_finishes(meta, marketer):
    sim = meta(numbers=2, scenario=[{"error_code": 131042, "after": 6}])
    campaign = _drive(_launched(marketer, numbers=2, contacts=20))

    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.pause_reason.startswith("All numbers exhausted: +971 50 900 0001:")
    assert "(131042)" in campaign.pause_reason
    assert "+971 50 900 0002" in campaign.pause_reason

    sim.set_scenario({"rules": []})
    campaign = _drive(campaign_resume(campaign=campaign))

    assert campaign.status == Campaign.Status.COMPLETED
    assert _sent_once_each(sim, campaign)


def test_recipient_codes_end_contacts_with_their_reasons_and_131050_opts_out(
    meta, marketer, settings
):
    settings.ENGINE_MARKETING_CAP_RETRIES = 0  # its day-later retries: see test_guard.py
    rules = [
        {"recipient": "971500000003", "error_code": 131049},
        {"recipient": "971500000004", "error_code": 131026},
        {"recipient": "971500000005", "error_code": 131050},
    ]
    sim = meta(numbers=1, scenario=rules)
    campaign = _drive(_launched(marketer, numbers=1, contacts=8))

    assert campaign.status == Campaign.Status.COMPLETED
    failed = dict(
        Contact.objects.filter(campaign=campaign, state="failed").values_list(
            "phone", "last_error_code"
        )
    )
    assert failed == {"+971500000003": 131049, "+971500000004": 131026, "+971500000005": 131050}
    assert "marketing messages" in Contact.objects.get(phone="+971500000005").last_error
    assert OptOut.objects.filter(phone="+971500000005", reason="131050").exists()
    assert campaign.failed_count == 3
    assert sim.stats()["accepted_total"] == 5


def test_throttled_sends_back_off_and_nothing_is_lost(meta, marketer):
    sim = meta(numbers=1, scenario=[{"error_code": 130429, "after": 3, "count": 5}])
    campaign = _drive(_launched(marketer, numbers=1, contacts=20))

    assert campaign.status == Campaign.Status.COMPLETED
    assert _sent_once_each(sim, campaign)
    assert sim.stats()["rejected_by_code"] == {"130429": 5}


def test_a_transient_error_retries_later_with_the_same_bytes(meta, marketer):
    sim = meta(numbers=1, scenario=[{"recipient": "971500000002", "error_code": 131000}])
    campaign = _drive(_launched(marketer, numbers=1, contacts=3), rounds=3)

    contact = Contact.objects.get(phone="+971500000002")
    assert contact.state == "pending"
    assert contact.not_before is not None
    assert contact.attempts == 1
    first = contact.payload
    sim.set_scenario({"rules": []})
    Contact.objects.filter(pk=contact.pk).update(not_before=None)
    campaign = _drive(campaign)

    assert campaign.status == Campaign.Status.COMPLETED
    [received] = sim.messages("971500000002")
    assert json.dumps(received, separators=(",", ":"), ensure_ascii=False) == first


def test_a_send_without_an_answer_is_not_resent_until_the_grace_period_passes(
    meta, marketer, settings
):
    sim = meta(numbers=1, scenario=[{"recipient": "971500000002", "timeout": True}])
    campaign = _launched(marketer, numbers=1, contacts=3)
    _drive(campaign, rounds=4)

    contact = Contact.objects.get(phone="+971500000002")
    assert contact.state == "claimed"
    assert contact.claimed_by_id is None
    assert sim.stats()["accepted_by_recipient"]["971500000002"] == 1
    assert claims_reap() == (0, 0)

    Contact.objects.filter(pk=contact.pk).update(lease_until="2000-01-01T00:00:00Z")
    assert claims_reap() == (0, 1)
    assert Contact.objects.get(pk=contact.pk).state == "pending"


def test_a_dead_workers_armed_claims_wait_and_its_unarmed_ones_return_at_once(marketer):
    campaign = campaign_launch(
        campaign=campaign_stage(world=world_dict(numbers=1), owner=marketer, contacts=5)
    )
    sender = campaign.senders.get()
    contacts = list(campaign.contacts.order_by("id"))
    Contact.objects.filter(campaign=campaign).update(
        state="claimed", claimed_by=sender, claim_token=7, lease_until="2000-01-01T00:00:00Z"
    )
    Contact.objects.filter(pk__in=[c.pk for c in contacts[:2]]).update(sending=True)

    assert claims_reap() == (2, 3)
    awaiting = Contact.objects.filter(campaign=campaign, state="claimed")
    assert set(awaiting.values_list("id", flat=True)) == {c.pk for c in contacts[:2]}
    assert set(awaiting.values_list("claimed_by", "claim_token")) == {(None, 7)}
    assert Contact.objects.filter(campaign=campaign, state="pending").count() == 3


def test_131042_stops_every_number_of_the_account_and_pauses_with_the_reason(meta, marketer):
    broken = phone_number_id(2)
    sim = meta(mps=20, scenario=[{"phone_number_id": broken, "error_code": 131042, "after": 2}])
    campaign = _drive(_launched(marketer, contacts=60, mps=20))

    assert campaign.status == Campaign.Status.PAUSED
    assert set(campaign.senders.values_list("state", "exhausted_code")) == {("exhausted", 131042)}
    assert "131042" in campaign.pause_reason
    accepted = sim.stats()["accepted_by_recipient"]
    assert set(accepted.values()) == {1}
    assert Contact.objects.filter(campaign=campaign, state="sent").count() == len(accepted)
    assert not Contact.objects.filter(campaign=campaign, state="claimed").exists()


def test_a_paused_campaign_stops_at_the_next_slice_and_returns_its_claims(meta, marketer):
    sim = meta(numbers=1, mps=20)
    campaign = _launched(marketer, numbers=1, contacts=100, mps=20)
    sender = campaign.senders.get()
    sender_run_slice(campaign_id=campaign.pk, sender_id=sender.pk)
    sent = sim.stats()["accepted_total"]
    assert 0 < sent < 100

    campaign_pause(campaign=campaign, reason="Checking the offer")
    sender_run_slice(campaign_id=campaign.pk, sender_id=sender.pk)

    assert sim.stats()["accepted_total"] == sent
    assert not Contact.objects.filter(campaign=campaign, state="claimed").exists()
    assert Contact.objects.filter(campaign=campaign, state="pending").count() == 100 - sent


def test_a_paused_template_is_not_used_by_the_next_send_of_any_sender(meta, marketer):
    sim = meta(numbers=2)
    campaign = _launched(marketer, numbers=2, contacts=40)
    MessageTemplate.objects.filter(name="promo_a").update(status="PAUSED")

    campaign = _drive(campaign)

    assert campaign.status == Campaign.Status.COMPLETED
    assert sim.stats()["accepted_by_template"] == {"promo_b": 40}


def test_only_one_slice_runs_per_sender(meta, marketer):
    meta(numbers=1)
    campaign = _launched(marketer, numbers=1, contacts=3)
    sender = campaign.senders.get()
    engine_redis.client().set(engine_redis.sender_lock_key(sender.pk), "other")

    result = sender_run_slice(campaign_id=campaign.pk, sender_id=sender.pk)

    assert result.again is False
    assert Contact.objects.filter(campaign=campaign, state="pending").count() == 3


def test_a_slice_queues_the_next_one_while_work_remains_and_only_one(
    meta, marketer, engine_settings
):
    meta(numbers=1, mps=10)
    campaign = _launched(marketer, numbers=1, contacts=30, mps=10)
    sender = campaign.senders.get()

    sender_run_slice(campaign_id=campaign.pk, sender_id=sender.pk)
    queued_again = dispatch.campaign_kick(campaign_id=campaign.pk)

    assert engine_settings == [(campaign.pk, sender.pk, 0)]
    assert queued_again == 0
    assert CampaignSender.objects.get(pk=sender.pk).state == "active"


def test_a_slice_goes_on_past_its_end_while_no_other_slice_waits(meta, marketer, settings):
    settings.ENGINE_SLICE_MAX_SECONDS = 30
    sim = meta(numbers=1, mps=20)
    campaign = _launched(marketer, numbers=1, contacts=40, mps=20)  # two seconds of sending

    sender_run_slice(campaign_id=campaign.pk, sender_id=campaign.senders.get().pk)

    assert sim.stats()["accepted_total"] == 40


def test_a_slice_ends_on_time_when_another_waits_for_a_worker(meta, marketer, settings):
    settings.ENGINE_SLICE_MAX_SECONDS = 30
    sim = meta(numbers=1, mps=20)
    campaign = _launched(marketer, numbers=1, contacts=40, mps=20)
    redis = engine_redis.client()
    redis.rpush(dispatch.SEND_QUEUE, "another campaign's slice")
    try:
        sender_run_slice(campaign_id=campaign.pk, sender_id=campaign.senders.get().pk)
    finally:
        redis.delete(*dispatch.send_queue_keys())

    assert 0 < sim.stats()["accepted_total"] < 40


def test_a_slice_for_a_deleted_campaign_ends_quietly(marketer):
    campaign = campaign_launch(
        campaign=campaign_stage(world=world_dict(numbers=1), owner=marketer, contacts=1)
    )
    sender_id = campaign.senders.get().pk
    campaign.delete()

    assert sender_run_slice(campaign_id=campaign.pk, sender_id=sender_id).again is False

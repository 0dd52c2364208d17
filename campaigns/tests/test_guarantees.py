"""The guarantees of issue 11, one finding at a time: each test failed on the engine before the
fencing, the one counter owner and the bounded requeues."""

from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from campaigns.counters import campaign_counters, campaign_truth
from campaigns.engine.batch import Batch
from campaigns.engine.claims import claims_reap, claims_release, contacts_arm, contacts_claim
from campaigns.engine.pacing import Pacer
from campaigns.engine.slice import sender_run_slice
from campaigns.engine.staging import PROMO_MAPPING, campaign_stage, world_dict
from campaigns.engine.watch import imports_requeue_lost
from campaigns.models import Campaign, CampaignSender, Contact, Message, OptOut
from campaigns.services.failures import FailedStatus, failed_statuses_apply
from campaigns.services.lifecycle import (
    CampaignStateError,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_retarget,
    campaign_retry_failed,
)
from campaigns.services.optouts import optout_record
from campaigns.services.senders import senders_templates_changed
from campaigns.tests.engine_setup import campaign_drive, engine_test_setup, simulators
from templates_app.models import MessageTemplate
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def engine_settings(settings, monkeypatch):
    engine_test_setup(settings, monkeypatch)
    settings.ENGINE_SPAM_THRESHOLD = 3
    return settings


@pytest.fixture
def meta(settings):
    with simulators(settings) as start:
        yield lambda *, numbers=2, mps=200, scenario=None: start(
            world_dict(numbers=numbers, mps=mps), scenario=scenario
        )


def _campaign(owner, *, numbers=2, contacts=10):
    return campaign_stage(world=world_dict(numbers=numbers), owner=owner, contacts=contacts)


def _drive(campaign, *, rounds=40):
    return campaign_drive(campaign, rounds=rounds)


def _sent_message(campaign, contact, *, wamid):
    sender = campaign.senders.order_by("id").first()
    template = sender.template_slots.order_by("position").first().template
    Contact.objects.filter(pk=contact.pk).update(state="sent", attempts=contact.attempts)
    message = MessageFactory(
        contact=contact, campaign=campaign, phone=sender.phone, template=template, wamid=wamid
    )
    return message


def assert_counters_true(campaign):
    assert campaign_counters(campaign_id=campaign.pk) == campaign_truth(campaign_id=campaign.pk)


# 1. A 131048 reported by webhook counts a strike and stops the number past the threshold;
#    webhook-reported throttles are requeued a bounded number of times.


def test_webhook_spam_strikes_stop_the_number_past_the_threshold(marketer):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=4))
    contacts = list(campaign.contacts.order_by("id"))
    messages = [_sent_message(campaign, c, wamid=f"w.spam.{c.pk}") for c in contacts]

    for message in messages:
        failed_statuses_apply(failures=[FailedStatus(message.pk, 131048, "Spam rate limit")])

    sender = campaign.senders.get()
    assert (sender.state, sender.exhausted_code) == ("exhausted", 131048)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
    assert set(Contact.objects.filter(campaign=campaign).values_list("attempts", flat=True)) == {1}
    assert_counters_true(campaign)


def test_a_contact_throttled_by_webhook_every_time_ends_failed(marketer, settings):
    settings.ENGINE_MAX_ATTEMPTS = 3
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=1))
    contact = campaign.contacts.get()
    for attempt in range(20):
        contact.refresh_from_db()
        if contact.state == "failed":
            break
        message = _sent_message(campaign, contact, wamid=f"w.thr.{attempt}")
        failed_statuses_apply(failures=[FailedStatus(message.pk, 130429, "Throughput")])

    contact.refresh_from_db()
    assert contact.state == "failed"
    assert contact.last_error_code == 130429
    assert attempt < 20, "the requeue was not bounded"
    assert_counters_true(campaign)


# 2. Opt-outs are enforced when a contact is armed, on every path.


def test_an_opt_out_added_after_the_claim_is_skipped_not_sent(marketer, meta):
    sim = meta(numbers=1)
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=3))
    sender = campaign.senders.get()
    claimed = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=9, limit=3)
    OptOut.objects.create(phone=claimed[0].phone, reason=OptOut.Reason.MANUAL)

    armed = contacts_arm(token=9, rows=[{"id": c.id, "payload": "{}", "t": None} for c in claimed])

    assert armed == {claimed[1].id, claimed[2].id}
    skipped = Contact.objects.get(pk=claimed[0].id)
    assert (skipped.state, skipped.skip_reason) == ("skipped", "opted_out")
    assert sim.stats()["accepted_total"] == 0
    assert_counters_true(campaign)


def test_a_follow_up_to_repliers_never_messages_one_who_replied_stop(marketer, meta):
    sim = meta(numbers=1)
    first = _drive(campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=3)))
    Message.objects.filter(campaign=first).update(replied_at=timezone.now())
    stopped = first.contacts.order_by("id").first()
    follow_up = campaign_retarget(campaign=first, audience="replied", user=marketer)
    optout_record(phone=stopped.phone, reason=OptOut.Reason.KEYWORD)  # STOP after the copy
    sim.reset()

    follow_up = _drive(campaign_launch(campaign=follow_up))

    accepted = sim.stats()["accepted_by_recipient"]
    assert stopped.phone.lstrip("+") not in accepted
    assert len(accepted) == 2
    assert follow_up.status == Campaign.Status.COMPLETED
    assert follow_up.contacts.get(phone=stopped.phone).state == "skipped"
    assert_counters_true(follow_up)


# 3. A slice that lost its lease can neither send nor write; a second slice cannot release the
#    first one's contacts that are on their way to Meta.


def test_a_stale_slice_cannot_write_contacts_the_reaper_gave_to_another(marketer):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=2))
    sender = campaign.senders.get()
    stale = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=1, limit=2)
    Contact.objects.filter(campaign=campaign).update(lease_until=timezone.now() - timedelta(1))
    claims_reap()  # never armed: back to the pool at once
    fresh = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=2, limit=2)

    assert (
        contacts_arm(token=1, rows=[{"id": c.id, "payload": "{}", "t": None} for c in stale])
        == set()
    )
    late = Batch(campaign_id=campaign.pk, sender_id=sender.pk, phone_id=sender.phone_id, token=1)
    for contact in stale:
        late.add_failed(contact, code=131026, reason="stale")
    late.flush()

    assert {c.id for c in fresh} == {c.id for c in stale}
    assert set(campaign.contacts.values_list("state", "claim_token")) == {("claimed", 2)}
    assert_counters_true(campaign)


def test_a_second_slice_does_not_release_contacts_on_their_way_to_meta(marketer):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=2))
    sender = campaign.senders.get()
    first, second = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=1, limit=2)
    contacts_arm(token=1, rows=[{"id": first.id, "payload": "{}", "t": None}])

    assert claims_release(sender_id=sender.pk) == 1

    assert Contact.objects.get(pk=first.id).state == "claimed"
    assert Contact.objects.get(pk=second.id).state == "pending"


# 4. A template webhook leaving no template pauses the campaign with a reason.


def test_a_template_event_that_leaves_no_template_pauses_with_the_reason(marketer):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=2, contacts=2))
    templates = MessageTemplate.objects.filter(name__startswith="promo_")
    templates.update(status="PAUSED")

    senders_templates_changed(template_ids=list(templates.values_list("id", flat=True)))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "No approved template left" in campaign.pause_reason
    assert not campaign.senders.filter(state=CampaignSender.State.ACTIVE).exists()


# 5. A row that fills only a fallback template is sent with that template.


def test_a_row_that_fills_only_the_fallback_template_is_sent_with_it(marketer, meta):
    sim = meta(numbers=1)
    campaign = _campaign(marketer, numbers=1, contacts=3)
    first, second, *_ = campaign.senders.get().template_slots.order_by("position")
    mapping = dict(campaign.variable_mapping)
    mapping[str(first.template_id)] = {**PROMO_MAPPING, "body.2": {"column": "code"}}
    Campaign.objects.filter(pk=campaign.pk).update(variable_mapping=mapping)
    with_code = campaign.contacts.order_by("id").first()
    Contact.objects.filter(pk=with_code.pk).update(variables={**with_code.variables, "code": "X"})
    campaign.refresh_from_db()

    campaign = _drive(campaign_launch(campaign=campaign))

    assert campaign.status == Campaign.Status.COMPLETED
    assert sim.stats()["accepted_by_template"] == {"promo_a": 1, "promo_b": 2}
    assert not campaign.contacts.filter(state="failed").exists()


# 6. A failed status after completion does not put the contact back in a finished campaign.


def test_a_failed_status_after_completion_fails_the_contact(marketer):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=1))
    contact = campaign.contacts.get()
    message = _sent_message(campaign, contact, wamid="w.late")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)

    failed_statuses_apply(failures=[FailedStatus(message.pk, 131000, "Something went wrong")])

    contact.refresh_from_db()
    assert contact.state == "failed"
    assert_counters_true(campaign)


# 7. Counters equal a recount whatever moved the contacts.


def test_a_webhook_failure_moves_the_contact_from_sent_to_failed_in_the_counters(marketer):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=2))
    first, second = campaign.contacts.order_by("id")
    message = _sent_message(campaign, first, wamid="w.fail")
    _sent_message(campaign, second, wamid="w.ok")

    failed_statuses_apply(failures=[FailedStatus(message.pk, 131026, "Undeliverable")])
    retried = campaign_retry_failed(campaign=campaign)

    counters = campaign_counters(campaign_id=campaign.pk)
    assert (counters["sent"], counters["failed"]) == (1, 1)
    assert retried.queued == 0
    assert_counters_true(campaign)


def test_an_opt_out_counts_the_contacts_it_skips(marketer):
    campaign = _campaign(marketer, numbers=1, contacts=3)
    optout_record(phone=campaign.contacts.order_by("id").first().phone, reason="manual")

    assert campaign_counters(campaign_id=campaign.pk)["skipped"] == 1
    assert_counters_true(campaign)


# 8. A Redis error in the send loop still writes what was sent; a lost import is queued again.


def test_redis_going_away_mid_slice_still_records_every_accepted_send(marketer, meta, monkeypatch):
    sim = meta(numbers=1, mps=50)
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=1, contacts=60))
    take = Pacer.take
    calls = []

    def flaky(self, want):
        calls.append(want)
        if len(calls) > 3:
            raise redis.ConnectionError("Connection refused")
        return take(self, want)

    monkeypatch.setattr(Pacer, "take", flaky)
    sender_run_slice(campaign_id=campaign.pk, sender_id=campaign.senders.get().pk)

    accepted = sim.stats()["accepted_total"]
    assert 0 < accepted < 60
    assert Message.objects.filter(campaign=campaign).count() == accepted
    assert campaign.contacts.filter(state="sent").count() == accepted
    assert not campaign.contacts.filter(state="claimed").exists()
    assert_counters_true(campaign)


def test_an_import_whose_task_was_lost_is_queued_again(marketer, monkeypatch, settings):
    from campaigns.importing import tasks

    settings.IMPORT_STALL_MINUTES = 1
    queued = []
    monkeypatch.setattr(tasks.import_contacts, "delay", lambda **kw: queued.append(kw))
    campaign = Campaign.objects.create(name="lost", owner=marketer, status="importing")
    Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    assert imports_requeue_lost() == [campaign.pk]
    assert queued == [{"campaign_id": campaign.pk}]
    assert imports_requeue_lost() == []  # touched: not again until it stalls again


# 9. Scheduling keeps the time through pause and resume and refuses a time already past.


def test_pause_then_resume_of_a_scheduled_campaign_waits_for_its_time(marketer):
    later = timezone.now() + timedelta(hours=2)
    campaign = campaign_launch(campaign=_campaign(marketer), scheduled_at=later)
    campaign_pause(campaign=campaign)

    campaign = campaign_resume(campaign=campaign)

    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == later
    assert campaign.launched_at is None


def test_a_schedule_in_the_past_is_refused_with_a_sentence(marketer):
    campaign = _campaign(marketer)
    with pytest.raises(CampaignStateError, match="already passed"):
        campaign_launch(campaign=campaign, scheduled_at=timezone.now() - timedelta(minutes=5))
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.READY


def test_an_unparsable_schedule_on_the_campaign_page_is_refused(marketer_client, marketer):
    campaign = _campaign(marketer)
    response = marketer_client.post(
        f"/campaigns/{campaign.pk}/launch/", {"scheduled_at": "next tuesday"}, follow=True
    )
    assert "Pick a real date and time" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.READY


# 10. Account-scope codes stop every number of the account.


@pytest.mark.parametrize("code", [131042, 368, 131031, 131005, 131064])
def test_an_account_scope_code_by_webhook_stops_every_number_of_the_account(marketer, code):
    campaign = campaign_launch(campaign=_campaign(marketer, numbers=3, contacts=1))
    message = _sent_message(campaign, campaign.contacts.get(), wamid=f"w.{code}")

    failed_statuses_apply(failures=[FailedStatus(message.pk, code, "Account problem")])

    assert set(campaign.senders.values_list("state", flat=True)) == {"exhausted"}
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED

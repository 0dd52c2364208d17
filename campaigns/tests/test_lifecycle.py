from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignSender, Contact
from campaigns.services.lifecycle import (
    CampaignStateError,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_retarget,
    campaign_retry_failed,
    campaign_stats,
)
from templates_app.models import MessageTemplate
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)
from titanflow.whatsapp.payloads import parse_slots

pytestmark = pytest.mark.django_db

MAPPED = {"header.1": {"column": "name"}, "body.1": {"column": "name"}, "body.2": {"text": "X1"}}


def _template(**kwargs):
    template = TemplateFactory(**kwargs)
    template.slots = [slot.to_dict() for slot in parse_slots(template.components)]
    template.save(update_fields=["slots"])
    return template


def _ready_campaign(*, contacts=3, templates=1, mapped=True):
    campaign = CampaignFactory(status=Campaign.Status.READY)
    sender = SenderFactory(campaign=campaign)
    chosen = [_template() for _ in range(templates)]
    for position, template in enumerate(chosen):
        SenderTemplateFactory(sender=sender, template=template, position=position)
    if mapped:
        campaign.variable_mapping = {str(t.pk): MAPPED for t in chosen}
        campaign.save(update_fields=["variable_mapping"])
    ContactFactory.create_batch(contacts, campaign=campaign)
    return campaign, sender, chosen


def test_launch_runs_the_campaign_and_binds_each_sender_to_its_first_template():
    campaign, sender, templates = _ready_campaign(templates=2)

    campaign_launch(campaign=campaign)

    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.launched_at is not None
    sender.refresh_from_db()
    assert sender.current_template == templates[0]


def test_launching_twice_starts_one_run():
    campaign, _, _ = _ready_campaign()
    stale_copy = Campaign.objects.get(pk=campaign.pk)
    campaign_launch(campaign=campaign)

    with pytest.raises(CampaignStateError):
        campaign_launch(campaign=stale_copy)


def test_launch_in_the_future_schedules_instead():
    campaign, _, _ = _ready_campaign()
    when = timezone.now() + timedelta(hours=2)

    campaign_launch(campaign=campaign, scheduled_at=when)

    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == when
    assert campaign.launched_at is None


def test_launch_refuses_without_a_sender():
    campaign = CampaignFactory(status=Campaign.Status.READY)
    ContactFactory(campaign=campaign)

    with pytest.raises(CampaignStateError, match="sending number"):
        campaign_launch(campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.READY


def test_launch_refuses_a_sender_whose_templates_are_all_paused():
    campaign, sender, templates = _ready_campaign()
    MessageTemplate.objects.filter(pk=templates[0].pk).update(status="PAUSED")

    with pytest.raises(CampaignStateError, match="no approved template"):
        campaign_launch(campaign=campaign)


def test_launch_refuses_an_unmapped_variable():
    campaign, _, _ = _ready_campaign(mapped=False)

    with pytest.raises(CampaignStateError, match="body.1"):
        campaign_launch(campaign=campaign)


def test_launch_refuses_a_draft():
    campaign, _, _ = _ready_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DRAFT)
    campaign.refresh_from_db()

    with pytest.raises(CampaignStateError, match="only a ready campaign"):
        campaign_launch(campaign=campaign)


def test_pause_then_resume_reactivates_exhausted_numbers_and_clears_template_marks():
    campaign, sender, templates = _ready_campaign()
    campaign_launch(campaign=campaign)
    CampaignSender.objects.filter(pk=sender.pk).update(
        state="exhausted", exhausted_code=131042, exhausted_reason="payment"
    )
    sender.template_slots.update(failed_code=132001)

    campaign_pause(campaign=campaign, reason="All numbers exhausted")
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.pause_reason == "All numbers exhausted"
    campaign_resume(campaign=campaign)

    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.pause_reason == ""
    sender.refresh_from_db()
    assert sender.state == "active"
    assert sender.exhausted_code is None
    assert sender.current_template == templates[0]
    assert sender.template_slots.get().failed_code is None


def test_resume_refuses_when_no_template_can_be_sent():
    campaign, _, templates = _ready_campaign()
    campaign_launch(campaign=campaign)
    campaign_pause(campaign=campaign)
    MessageTemplate.objects.filter(pk=templates[0].pk).update(status="DISABLED")

    with pytest.raises(CampaignStateError, match="No number has an approved template"):
        campaign_resume(campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED


def test_only_a_running_or_scheduled_campaign_pauses():
    campaign, _, _ = _ready_campaign()

    with pytest.raises(CampaignStateError, match="only a running or scheduled"):
        campaign_pause(campaign=campaign)


def test_cancel_is_final():
    campaign, _, _ = _ready_campaign()
    campaign_launch(campaign=campaign)
    campaign_cancel(campaign=campaign)

    assert campaign.status == Campaign.Status.CANCELLED
    with pytest.raises(CampaignStateError):
        campaign_resume(campaign=campaign)
    with pytest.raises(CampaignStateError, match="cannot be cancelled"):
        campaign_cancel(campaign=campaign)


def test_retry_failed_puts_failed_contacts_back_and_restarts_a_completed_campaign():
    campaign, _, _ = _ready_campaign(contacts=0)
    ContactFactory.create_batch(2, campaign=campaign, state="failed", last_error_code=131000)
    ContactFactory(campaign=campaign, state="sent")
    Campaign.objects.filter(pk=campaign.pk).update(status="completed")

    result = campaign_retry_failed(campaign=campaign)

    assert (result.queued, result.left) == (2, {})
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.failed_count == 0
    assert campaign.sent_count == 1
    pending = Contact.objects.filter(campaign=campaign, state="pending")
    assert pending.count() == 2
    assert not pending.filter(last_error_code__isnull=False).exists()


def test_retry_failed_leaves_what_cannot_succeed_now_and_says_why():
    campaign, _, _ = _ready_campaign(contacts=0)
    ContactFactory(campaign=campaign, state="failed", last_error_code=131000)
    ContactFactory(campaign=campaign, state="failed", last_error_code=131050, last_error="x")
    ContactFactory(campaign=campaign, state="failed", last_error_code=131049, last_error="x")
    ContactFactory(campaign=campaign, state="failed", last_error_code=131026, last_error="Gone.")
    ContactFactory(campaign=campaign, state="failed", last_error="No value for body.1 in x.")
    Campaign.objects.filter(pk=campaign.pk).update(status="completed")

    result = campaign_retry_failed(campaign=campaign)

    assert result.queued == 1
    assert result.left == {
        "the person stopped marketing messages": 1,
        "Meta's per-user marketing limit (try again after 24 hours)": 1,
        "Gone.": 1,
        "No value for body.1 in x.": 1,
    }
    assert campaign.failed_count == 4
    assert Contact.objects.filter(campaign=campaign, state="pending").count() == 1


def test_retry_failed_with_nothing_failed_says_so():
    campaign, _, _ = _ready_campaign()
    campaign_launch(campaign=campaign)

    with pytest.raises(CampaignStateError, match="No contact"):
        campaign_retry_failed(campaign=campaign)


def test_retarget_not_read_builds_a_ready_campaign_with_the_same_senders_and_mapping(marketer):
    campaign, sender, templates = _ready_campaign(contacts=0)
    read = ContactFactory(campaign=campaign, state="sent")
    unread = ContactFactory(campaign=campaign, state="sent")
    ContactFactory(campaign=campaign, state="failed")
    MessageFactory(contact=read, status="read")
    MessageFactory(contact=unread, status="delivered")

    target = campaign_retarget(campaign=campaign, audience="not_read", user=marketer)

    assert target.status == Campaign.Status.READY
    assert target.owner == marketer
    assert list(target.contacts.values_list("phone", "state")) == [(unread.phone, "pending")]
    assert target.total_count == 1
    assert target.variable_mapping == campaign.variable_mapping
    copy = target.senders.get()
    assert copy.phone_id == sender.phone_id
    assert list(copy.template_slots.values_list("template_id", flat=True)) == [templates[0].pk]
    campaign_launch(campaign=target)
    assert target.status == Campaign.Status.RUNNING


@pytest.mark.parametrize(
    ("audience", "expected"), [("failed", {"f"}), ("not_delivered", {"s"}), ("replied", {"r"})]
)
def test_retarget_audiences(marketer, audience, expected):
    campaign, _, _ = _ready_campaign(contacts=0)
    failed = ContactFactory(campaign=campaign, state="failed", name="f")
    sent = ContactFactory(campaign=campaign, state="sent", name="s")
    replied = ContactFactory(campaign=campaign, state="sent", name="r")
    MessageFactory(contact=sent, status="sent")
    MessageFactory(contact=replied, status="read", replied_at=timezone.now())
    assert failed.pk

    target = campaign_retarget(campaign=campaign, audience=audience, user=marketer)

    assert set(target.contacts.values_list("name", flat=True)) == expected


def test_retarget_refuses_an_empty_audience(marketer):
    campaign, _, _ = _ready_campaign()

    with pytest.raises(CampaignStateError, match="matches that audience"):
        campaign_retarget(campaign=campaign, audience="replied", user=marketer)
    assert Campaign.objects.count() == 1


def test_stats_report_counters_senders_and_failures_by_code():
    campaign, sender, _ = _ready_campaign(contacts=1)
    ContactFactory.create_batch(
        2, campaign=campaign, state="failed", last_error_code=131049, last_error="limit"
    )
    ContactFactory(campaign=campaign, state="failed", last_error_code=131026, last_error="gone")
    MessageFactory(
        contact__campaign=campaign, contact__state="sent", phone=sender.phone, status="delivered"
    )

    stats = campaign_stats(campaign=campaign)

    assert stats["contacts"]["failed"] == 3
    first = stats["failures"][0]
    assert (first["kind"], first["code"], first["count"], first["meta_said"]) == (
        "refused",
        131049,
        2,
        "limit",
    )
    assert stats["senders"][0]["phone_number_id"] == sender.phone.phone_number_id
    assert stats["senders"][0]["sent"] == 1
    assert stats["senders"][0]["delivered"] == 1


def test_retry_leaves_template_refusals_while_no_template_is_approved():
    campaign, _, [template] = _ready_campaign(contacts=0)
    failed = {"campaign": campaign, "state": "failed", "last_error_code": 132001}
    ContactFactory.create_batch(2, last_error="Not approved (132001).", **failed)
    Campaign.objects.filter(pk=campaign.pk).update(status="completed")
    MessageTemplate.objects.filter(pk=template.pk).update(status=MessageTemplate.Status.PAUSED)

    paused = campaign_retry_failed(campaign=campaign)

    assert (paused.queued, paused.left) == (
        0,
        {"no template of this campaign is approved right now": 2},
    )
    MessageTemplate.objects.filter(pk=template.pk).update(status=MessageTemplate.Status.APPROVED)
    assert campaign_retry_failed(campaign=campaign).queued == 2

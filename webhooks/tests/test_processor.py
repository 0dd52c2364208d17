from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignSender, Contact, Message, OptOut, SenderTemplate
from inbox.models import Conversation, InboxMessage
from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from templates_app.signals import template_status_changed
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    SenderFactory,
    TemplateFactory,
)
from webhooks.models import PendingStatus, WebhookEvent
from webhooks.processor import deliveries_process
from webhooks.tests import deliveries as d
from webhooks.tests.records import messages_sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(phone):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    SenderFactory(campaign=campaign, phone=phone)
    return campaign


def _messages(campaign, phone, count, *, prefix="wamid.M"):
    messages = []
    for n in range(count):
        contact = ContactFactory(campaign=campaign, state=Contact.State.SENT)
        messages.append(
            MessageFactory(
                contact=contact,
                campaign=campaign,
                phone=phone,
                template=TemplateFactory(account=phone.account),
                wamid=f"{prefix}{n}",
            )
        )
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=count, total_count=count)
    return messages


@pytest.fixture
def deliver(post_delivery):
    def deliver(*deliveries):
        for delivery in deliveries:
            assert post_delivery(delivery).status_code == 200
        return deliveries_process()

    return deliver


def test_statuses_move_messages_and_campaign_counters(deliver, campaign, phone):
    first, second = _messages(campaign, phone, 2)
    deliver(d.statuses(d.status(first.wamid, "delivered"), d.status(second.wamid, "read")))
    first.refresh_from_db()
    second.refresh_from_db()
    campaign.refresh_from_db()
    assert (first.status, second.status) == ("delivered", "read")
    assert first.delivered_at and second.read_at and second.delivered_at
    assert (campaign.delivered_count, campaign.read_count) == (2, 1)
    assert WebhookEvent.objects.get().processed_at is not None


def test_a_thousand_statuses_in_one_delivery(deliver, campaign, phone):
    messages = messages_sent(campaign, phone, 1000, wamid_prefix="wamid.BULK")
    delivery = d.statuses(*[d.status(m.wamid, "delivered") for m in messages])
    result = deliver(delivery)
    assert result.statuses == 1000 and result.statuses_moved == 1000
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 1000
    campaign.refresh_from_db()
    assert campaign.delivered_count == 1000


def test_read_before_delivered_counts_both_once_and_never_goes_back(deliver, campaign, phone):
    (message,) = _messages(campaign, phone, 1)
    deliver(d.statuses(d.status(message.wamid, "read", at=1_700_000_100)))
    deliver(d.statuses(d.status(message.wamid, "delivered", at=1_700_000_050)))
    deliver(d.statuses(d.status(message.wamid, "sent", at=1_700_000_000)))
    message.refresh_from_db()
    campaign.refresh_from_db()
    assert message.status == "read"
    assert message.read_at.timestamp() == 1_700_000_100
    assert (campaign.delivered_count, campaign.read_count) == (1, 1)


def test_the_same_delivery_three_times_changes_nothing_twice(deliver, campaign, phone):
    (message,) = _messages(campaign, phone, 1)
    delivery = d.statuses(d.status(message.wamid, "delivered"), d.status(message.wamid, "read"))
    deliver(delivery, delivery, delivery)
    campaign.refresh_from_db()
    assert WebhookEvent.objects.filter(processed_at__isnull=False).count() == 3
    assert (campaign.delivered_count, campaign.read_count) == (1, 1)


def test_failed_131049_holds_the_contact_a_day_with_its_reason(deliver, campaign, phone):
    (message,) = _messages(campaign, phone, 1)
    error = (131049, "This message was not delivered to maintain healthy ecosystem engagement.")
    deliver(d.statuses(d.status(message.wamid, "failed", error=error)))
    message.refresh_from_db()
    contact = Contact.objects.get(pk=message.contact_id)
    assert (message.status, message.error_code) == ("failed", 131049)
    assert "healthy ecosystem" in message.error_title
    assert contact.last_error_code == 131049
    assert contact.last_error.startswith("Held by Meta's per-user limit")
    assert contact.state == Contact.State.PENDING
    assert contact.not_before >= timezone.now() + timedelta(hours=23, minutes=59)


def test_failed_131049_past_its_retries_fails_the_contact(deliver, campaign, phone, settings):
    settings.ENGINE_MARKETING_CAP_RETRIES = 0
    (message,) = _messages(campaign, phone, 1)
    error = (131049, "This message was not delivered to maintain healthy ecosystem engagement.")
    deliver(d.statuses(d.status(message.wamid, "failed", error=error)))
    contact = Contact.objects.get(pk=message.contact_id)
    assert contact.state == Contact.State.FAILED
    assert Campaign.objects.get(pk=campaign.pk).failed_count == 1


def test_failed_after_delivered_is_not_applied(deliver, campaign, phone):
    (message,) = _messages(campaign, phone, 1)
    deliver(d.statuses(d.status(message.wamid, "delivered")))
    deliver(d.statuses(d.status(message.wamid, "failed", error=(131026, "Undeliverable"))))
    message.refresh_from_db()
    assert message.status == "delivered" and message.error_code is None


def test_the_status_that_delivers_a_message_marks_it_billable_under_its_category(
    deliver, campaign, phone
):
    billed, free = _messages(campaign, phone, 2)
    free_status = d.status(free.wamid, "delivered")
    free_status["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "utility"}
    deliver(d.statuses(d.status(billed.wamid, "sent"), free_status))
    billed.refresh_from_db()
    assert billed.billable is None  # Meta bills on delivery; "sent" moves nothing we wrote
    deliver(d.statuses(d.status(billed.wamid, "delivered")))
    billed.refresh_from_db()
    free.refresh_from_db()
    assert (billed.billable, billed.pricing_category) == (True, "MARKETING")
    assert (free.billable, free.pricing_category) == (False, "UTILITY")


def test_a_status_without_pricing_leaves_the_message_unpriced(deliver, campaign, phone):
    (message,) = _messages(campaign, phone, 1)
    status = d.status(message.wamid, "delivered")
    del status["pricing"]
    deliver(d.statuses(status))
    message.refresh_from_db()
    assert (message.status, message.billable, message.pricing_category) == ("delivered", None, "")


def test_a_status_that_waits_for_its_message_keeps_its_pricing(deliver, campaign, phone):
    contact = ContactFactory(campaign=campaign, state=Contact.State.SENT)
    deliver(d.statuses(d.status("wamid.PRICED", "delivered")))
    MessageFactory(contact=contact, campaign=campaign, phone=phone, wamid="wamid.PRICED")
    PendingStatus.objects.update(next_attempt_at=timezone.now())
    deliveries_process()
    message = Message.objects.get(wamid="wamid.PRICED")
    assert (message.status, message.billable, message.pricing_category) == (
        "delivered",
        True,
        "MARKETING",
    )


def test_status_for_a_message_not_written_yet_waits_and_then_applies(deliver, campaign, phone):
    contact = ContactFactory(campaign=campaign, state=Contact.State.SENT)
    result = deliver(d.statuses(d.status("wamid.LATE", "delivered", callback=f"c:{contact.pk}")))
    assert result.statuses_pending == 1
    assert PendingStatus.objects.get().wamid == "wamid.LATE"
    MessageFactory(contact=contact, campaign=campaign, phone=phone, wamid="wamid.LATE")
    PendingStatus.objects.update(next_attempt_at=timezone.now())
    deliveries_process()
    assert Message.objects.get(wamid="wamid.LATE").status == "delivered"
    assert not PendingStatus.objects.exists()


def test_status_for_an_ambiguous_send_writes_its_message_from_the_kept_payload(
    deliver, campaign, phone
):
    template = TemplateFactory(account=phone.account)
    contact = ContactFactory(
        campaign=campaign,
        state=Contact.State.CLAIMED,
        claimed_by=None,
        sending=True,
        payload='{"to": "971500000001"}',
        payload_template=template,
    )
    deliver(d.statuses(d.status("wamid.AMB", "delivered", callback=f"c:{contact.pk}")))
    message = Message.objects.get(wamid="wamid.AMB")
    assert (message.contact_id, message.template_id, message.phone_id) == (
        contact.pk,
        template.pk,
        phone.pk,
    )
    assert message.request_body == contact.payload
    assert message.status == "delivered"
    assert Contact.objects.get(pk=contact.pk).state == Contact.State.SENT
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.delivered_count) == (1, 1)
    assert not PendingStatus.objects.exists()


def test_a_contact_still_held_by_its_sender_is_not_reconciled(deliver, campaign, phone):
    sender = CampaignSender.objects.get(campaign=campaign)
    contact = ContactFactory(
        campaign=campaign,
        state=Contact.State.CLAIMED,
        claimed_by=sender,
        payload="{}",
        payload_template=TemplateFactory(account=phone.account),
    )
    deliver(d.statuses(d.status("wamid.INFLIGHT", "sent", callback=f"c:{contact.pk}")))
    assert not Message.objects.exists()
    assert PendingStatus.objects.get().wamid == "wamid.INFLIGHT"


def test_unmatched_status_is_kept_after_the_grace_period(deliver, campaign):
    deliver(d.statuses(d.status("wamid.NEVER", "delivered")))
    PendingStatus.objects.update(
        first_seen_at=timezone.now() - timezone.timedelta(days=1), next_attempt_at=timezone.now()
    )
    deliveries_process()
    kept = PendingStatus.objects.get()
    assert kept.given_up_at is not None and kept.attempts == 1


def test_inbox_reply_status_moves_forward_only(deliver, phone):
    conversation = Conversation.objects.create(phone=phone, wa_id="971500000001")
    reply = InboxMessage.objects.create(
        conversation=conversation,
        wamid="wamid.REPLY",
        direction="out",
        status="sent",
        timestamp=timezone.now(),
    )
    deliver(
        d.statuses(d.status(reply.wamid, "read")), d.statuses(d.status(reply.wamid, "delivered"))
    )
    reply.refresh_from_db()
    assert reply.status == "read"
    assert not PendingStatus.objects.exists()


def test_template_paused_then_approved(deliver, phone, django_capture_on_commit_callbacks):
    template = TemplateFactory(account=phone.account, meta_template_id="555")
    seen = []
    receiver = lambda **kw: seen.append(kw["template_ids"])  # noqa: E731
    template_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            deliver(d.template_status("555", "PAUSED", at=1_700_000_000))
        template.refresh_from_db()
        assert template.status == "PAUSED" and not template.is_sendable
        assert "LOW_QUALITY" in template.status_reason
        with django_capture_on_commit_callbacks(execute=True):
            deliver(d.template_status("555", "APPROVED", at=1_700_000_100))
    finally:
        template_status_changed.disconnect(receiver)
    template.refresh_from_db()
    assert template.is_sendable
    assert seen == [[template.pk], [template.pk]]


def test_a_template_rated_red_is_noted_on_the_live_campaigns_using_it(
    deliver, campaign, phone, django_capture_on_commit_callbacks
):
    template = TemplateFactory(account=phone.account, meta_template_id="556", name="spring_sale")
    SenderTemplate.objects.create(sender=campaign.senders.get(), template=template, position=0)
    value = {
        "message_template_id": 556,
        "message_template_name": "spring_sale",
        "message_template_language": "en_US",
        "previous_quality_score": "GREEN",
        "new_quality_score": "RED",
    }
    with django_capture_on_commit_callbacks(execute=True):
        deliver(d.envelope(("message_template_quality_update", value)))

    template.refresh_from_db()
    assert (template.quality_score, template.is_sendable) == ("RED", True)  # sends until paused
    event = campaign.events.get(kind="template_quality")
    assert event.text.startswith("Meta rates the template spring_sale (en_US) RED")
    assert event.template_id == template.pk


def test_an_older_template_event_does_not_undo_a_newer_one(deliver, phone):
    template = TemplateFactory(account=phone.account, meta_template_id="556")
    deliver(d.template_status("556", "APPROVED", at=1_700_000_100))
    deliver(d.template_status("556", "PAUSED", at=1_700_000_000))
    template.refresh_from_db()
    assert template.status == MessageTemplate.Status.APPROVED


def test_account_restriction_exhausts_that_accounts_senders(deliver, campaign, phone):
    value = {
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}],
    }
    deliver(d.envelope(("account_update", value)))
    assert WhatsAppAccount.objects.get(pk=phone.account_id).health == "restricted"
    sender = CampaignSender.objects.get(campaign=campaign)
    assert sender.state == CampaignSender.State.EXHAUSTED
    assert "RESTRICTED_BIZ_INITIATED_MESSAGING" in sender.exhausted_reason
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED


def test_throughput_upgrade_raises_the_numbers_rate(deliver, phone):
    value = {"display_phone_number": d.DISPLAY_NUMBER, "event": "THROUGHPUT_UPGRADE"}
    deliver(d.envelope(("phone_number_quality_update", value)))
    phone.refresh_from_db()
    assert (phone.throughput_level, phone.max_mps) == ("HIGH", 1000)


def test_user_preferences_stop_then_resume(deliver, phone):
    deliver(d.preference("971500000009", "stop", timestamp=1_700_000_000))
    assert OptOut.objects.active().get(phone="+971500000009").reason == "user_preferences"
    deliver(d.preference("971500000009", "resume", timestamp=1_700_000_100))
    assert not OptOut.objects.active().exists()


def test_a_resume_older_than_the_stop_arriving_late_keeps_the_opt_out(deliver, phone):
    deliver(d.preference("971500000009", "stop", timestamp=1_700_000_100))
    deliver(d.preference("971500000009", "resume", timestamp=1_700_000_000))
    assert OptOut.objects.active().filter(phone="+971500000009").exists()


def test_a_stop_older_than_the_resume_arriving_late_does_not_opt_out_again(deliver, phone):
    deliver(d.preference("971500000009", "resume", timestamp=1_700_000_100))
    deliver(d.preference("971500000009", "stop", timestamp=1_700_000_000))
    assert not OptOut.objects.active().filter(phone="+971500000009").exists()


def test_incoming_message_lands_in_the_inbox_once(deliver, phone):
    delivery = d.incoming("wamid.IN1", text="Is the sale still on?")
    deliver(delivery, delivery)
    conversation = Conversation.objects.get(phone=phone, wa_id="971500000001")
    assert conversation.unread_count == 1
    assert conversation.contact_name == "Layla"
    assert conversation.last_message_preview == "Is the sale still on?"
    assert InboxMessage.objects.get().body == "Is the sale still on?"


def test_reply_with_context_is_attributed_to_that_campaign_message(deliver, campaign, phone):
    older, quoted = _messages(campaign, phone, 2)
    Message.objects.filter(pk__in=[older.pk, quoted.pk]).update(recipient="+971500000001")
    deliver(d.incoming("wamid.IN2", text="Yes please", context=quoted.wamid))
    reply = InboxMessage.objects.get(wamid="wamid.IN2")
    assert reply.campaign_message_id == quoted.pk
    assert Message.objects.get(pk=quoted.pk).replied_at is not None
    assert Message.objects.get(pk=older.pk).replied_at is None
    assert Campaign.objects.get(pk=campaign.pk).replied_count == 1


def test_stop_keyword_opts_the_sender_out(deliver, phone):
    deliver(d.incoming("wamid.IN3", wa_id="971500000042", text="  stop "))
    assert OptOut.objects.get(phone="+971500000042").reason == "keyword"


def test_unknown_fields_and_types_are_stored_and_ignored(deliver, phone):
    weird = d.envelope(("brand_new_field", {"anything": [1, 2]}), ("messages", {"odd": True}))
    result = deliver(weird, d.incoming("wamid.IN4", kind="hologram", part={"depth": 3}))
    assert result.ignored == {"brand_new_field": 1}
    assert WebhookEvent.objects.filter(processed_at__isnull=False, error="").count() == 2
    assert InboxMessage.objects.get().type == "hologram"


def test_a_body_that_is_not_json_is_recorded_and_does_not_block_the_batch(campaign, phone):
    (message,) = _messages(campaign, phone, 1)
    broken = WebhookEvent.objects.create(
        body=b"{not json", signature_valid=True, received_at=timezone.now()
    )
    good = WebhookEvent.objects.create(
        body=d.encode(d.statuses(d.status(message.wamid, "delivered"))),
        signature_valid=True,
        received_at=timezone.now(),
    )
    deliveries_process()
    broken.refresh_from_db()
    good.refresh_from_db()
    assert broken.error.startswith("InvalidDelivery") and broken.processed_at
    assert good.processed_at and not good.error
    assert Message.objects.get(pk=message.pk).status == "delivered"


def test_unknown_phone_number_is_ignored(deliver, phone):
    deliver(d.incoming("wamid.IN5", phone_number_id="999"))
    assert not InboxMessage.objects.exists()
    assert PhoneNumber.objects.count() == 1


def test_one_broken_delivery_does_not_hold_back_the_others(campaign, phone, monkeypatch):
    first, second = _messages(campaign, phone, 2)
    for message in (first, second):
        WebhookEvent.objects.create(
            body=d.encode(d.statuses(d.status(message.wamid, "delivered"))),
            signature_valid=True,
            received_at=timezone.now(),
        )
    from webhooks import processor

    real = processor.statuses_apply

    def refuse_second(*, updates):
        if any(u.wamid == second.wamid for u in updates):
            raise RuntimeError("database hiccup")
        return real(updates=updates)

    monkeypatch.setattr(processor, "statuses_apply", refuse_second)
    deliveries_process()
    assert Message.objects.get(pk=first.pk).status == "delivered"
    broken = WebhookEvent.objects.get(error__contains="database hiccup")
    assert broken.processed_at is None and broken.attempts == 1
    monkeypatch.setattr(processor, "statuses_apply", real)
    deliveries_process()
    broken.refresh_from_db()
    assert broken.processed_at is not None and broken.error == ""
    assert Message.objects.get(pk=second.pk).status == "delivered"


def test_large_deliveries_are_applied_in_chunks(campaign, phone, monkeypatch):
    from webhooks import processor

    monkeypatch.setattr(processor, "BATCH_BYTES", 1)
    messages = _messages(campaign, phone, 3)
    for message in messages:
        WebhookEvent.objects.create(
            body=d.encode(d.statuses(d.status(message.wamid, "read"))),
            signature_valid=True,
            received_at=timezone.now(),
        )
    result = deliveries_process()
    assert (result.deliveries, result.statuses_moved) == (3, 3)
    assert Campaign.objects.get(pk=campaign.pk).read_count == 3


def test_a_run_that_found_work_looks_again_soon_and_an_idle_one_does_not(campaign, enqueued):
    from webhooks.tasks import process_pending

    WebhookEvent.objects.create(
        body=d.encode(d.statuses(d.status("wamid.X", "sent"))),
        signature_valid=True,
        received_at=timezone.now(),
    )
    process_pending()
    assert len(enqueued) == 1 and enqueued[0]["countdown"] > 0
    process_pending()
    assert len(enqueued) == 1


def test_a_username_user_without_a_number_still_gets_a_conversation(deliver, phone):
    delivery = d.incoming("wamid.IN6", wa_id="", text="hi from a username")
    value = delivery["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "Nova"}, "user_id": "US.777"}]
    value["messages"][0].pop("from")
    deliver(delivery)
    conversation = Conversation.objects.get()
    assert (conversation.wa_id, conversation.user_id) == ("US.777", "US.777")
    assert InboxMessage.objects.get().body == "hi from a username"


def test_the_same_early_status_delivered_twice_is_matched_in_full(deliver, campaign, phone):
    deliver(d.statuses(d.status("wamid.TWICE", "delivered", at=1_700_000_000)))
    twin = PendingStatus.objects.get()
    twin.pk = None
    twin.save()
    contact = ContactFactory(campaign=campaign, state=Contact.State.SENT)
    MessageFactory(contact=contact, campaign=campaign, phone=phone, wamid="wamid.TWICE")
    PendingStatus.objects.update(next_attempt_at=timezone.now())
    deliveries_process()
    assert not PendingStatus.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).delivered_count == 1

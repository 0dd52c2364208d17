from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message, OptOut
from campaigns.services.statuses import StatusUpdate
from inbox.models import Conversation, InboxMessage
from inbox.services.ingest import (
    IncomingMessage,
    inbox_statuses_apply,
    is_opt_out_keyword,
    messages_ingest,
)
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ConversationFactory,
    InboxMessageFactory,
    MessageFactory,
    PhoneFactory,
)

pytestmark = pytest.mark.django_db
WA_ID = "971501112222"


@pytest.fixture
def phone():
    return PhoneFactory()


def _incoming(phone, wamid, *, text="Hi", at=None, context="", kind="text", name="Omar", wa=WA_ID):
    return IncomingMessage(
        phone_number_id=phone.phone_number_id,
        wa_id=wa,
        wamid=wamid,
        type=kind,
        body=text,
        timestamp=at or timezone.now(),
        user_id="US.42",
        contact_name=name,
        context_wamid=context,
    )


def _sent(phone, *, ago: timedelta, wamid: str, campaign=None):
    campaign = campaign or CampaignFactory(status=Campaign.Status.RUNNING)
    contact = ContactFactory(campaign=campaign, phone=f"+{WA_ID}")
    return MessageFactory(
        contact=contact,
        campaign=campaign,
        phone=phone,
        wamid=wamid,
        sent_at=timezone.now() - ago,
    )


def test_one_conversation_per_number_and_person_with_unread_and_preview(phone):
    now = timezone.now()
    result = messages_ingest(
        messages=[
            _incoming(phone, "w.1", text="First", at=now - timedelta(minutes=2)),
            _incoming(phone, "w.2", text="Second   line", at=now, name="Omar K."),
        ]
    )
    assert result.stored == 2
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 2
    assert conversation.last_message_preview == "Second line"
    assert conversation.last_inbound_at == now
    assert (conversation.contact_name, conversation.user_id) == ("Omar K.", "US.42")


def test_a_message_is_stored_once_and_counted_once(phone):
    messages_ingest(messages=[_incoming(phone, "w.dup")])
    again = messages_ingest(messages=[_incoming(phone, "w.dup"), _incoming(phone, "w.dup")])
    assert (again.stored, again.duplicates) == (0, 1)
    assert InboxMessage.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1


def test_an_older_message_does_not_replace_the_latest_preview(phone):
    now = timezone.now()
    messages_ingest(messages=[_incoming(phone, "w.new", text="Newest", at=now)])
    messages_ingest(messages=[_incoming(phone, "w.old", text="Late", at=now - timedelta(hours=1))])
    conversation = Conversation.objects.get()
    assert conversation.last_message_preview == "Newest"
    assert conversation.unread_count == 2


def test_media_without_caption_previews_its_type(phone):
    messages_ingest(messages=[_incoming(phone, "w.img", text="", kind="image")])
    assert Conversation.objects.get().last_message_preview == "[image]"


def test_reply_without_context_goes_to_the_latest_send_from_that_number(phone):
    older = _sent(phone, ago=timedelta(hours=5), wamid="w.older")
    latest = _sent(phone, ago=timedelta(hours=1), wamid="w.latest")
    _sent(PhoneFactory(), ago=timedelta(minutes=5), wamid="w.other-number")
    result = messages_ingest(messages=[_incoming(phone, "w.reply")])
    assert result.attributed == 1
    assert InboxMessage.objects.get().campaign_message_id == latest.pk
    assert Message.objects.get(pk=latest.pk).replied_at is not None
    assert Message.objects.get(pk=older.pk).replied_at is None
    assert Campaign.objects.get(pk=latest.campaign_id).replied_count == 1


def test_reply_after_the_window_is_not_attributed(phone):
    _sent(phone, ago=timedelta(days=10), wamid="w.ancient")
    assert messages_ingest(messages=[_incoming(phone, "w.late")]).attributed == 0
    assert InboxMessage.objects.get().campaign_message is None


def test_only_the_first_reply_counts_for_the_campaign(phone):
    sent = _sent(phone, ago=timedelta(hours=1), wamid="w.sent")
    messages_ingest(messages=[_incoming(phone, "w.r1", context=sent.wamid)])
    messages_ingest(messages=[_incoming(phone, "w.r2", context=sent.wamid)])
    assert InboxMessage.objects.filter(campaign_message=sent).count() == 2
    assert Campaign.objects.get(pk=sent.campaign_id).replied_count == 1


def test_a_quote_of_another_numbers_message_counts_for_no_campaign(phone):
    foreign = _sent(PhoneFactory(), ago=timedelta(hours=1), wamid="w.other-account")

    result = messages_ingest(messages=[_incoming(phone, "w.forged", context=foreign.wamid)])

    assert result.attributed == 0
    assert InboxMessage.objects.get().campaign_message is None
    assert Message.objects.get(pk=foreign.pk).replied_at is None
    assert Campaign.objects.get(pk=foreign.campaign_id).replied_count == 0


def test_system_events_are_not_replies(phone):
    _sent(phone, ago=timedelta(hours=1), wamid="w.sent")
    messages_ingest(messages=[_incoming(phone, "w.sys", kind="system", text="changed number")])
    assert InboxMessage.objects.get().campaign_message is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("STOP", True), (" stop ", True), ("Stop all", True), ("please stop", False), ("", False)],
)
def test_opt_out_keywords_match_the_whole_message(text, expected):
    assert is_opt_out_keyword(text) is expected


def test_keyword_reply_records_an_opt_out_once(phone):
    messages_ingest(messages=[_incoming(phone, "w.stop", text="UNSUBSCRIBE")])
    messages_ingest(messages=[_incoming(phone, "w.stop", text="UNSUBSCRIBE")])
    assert OptOut.objects.get().reason == "keyword"


def test_message_to_a_number_we_do_not_have_is_skipped(phone):
    unknown = IncomingMessage(
        phone_number_id="nope",
        wa_id=WA_ID,
        wamid="w.x",
        type="text",
        body="Hi",
        timestamp=timezone.now(),
    )
    assert messages_ingest(messages=[unknown]).unknown_phone == 1
    assert not Conversation.objects.exists()


def test_inbox_reply_statuses_move_forward_and_record_failures():
    conversation = ConversationFactory()
    sent = InboxMessageFactory(conversation=conversation, direction="out", status="sent")
    failing = InboxMessageFactory(conversation=conversation, direction="out", status="sent")
    now = timezone.now()
    found = inbox_statuses_apply(
        updates=[
            StatusUpdate(sent.wamid, "read", now),
            StatusUpdate(sent.wamid, "delivered", now),
            StatusUpdate(failing.wamid, "failed", now, error_code=131047, error_title="24 h"),
            StatusUpdate("w.campaign", "read", now),
        ]
    )
    assert found == {sent.wamid, failing.wamid}
    sent.refresh_from_db()
    failing.refresh_from_db()
    assert sent.status == "read"
    assert (failing.status, failing.error_code) == ("failed", 131047)


def test_a_reply_gives_the_conversation_the_name_from_the_campaigns_list(phone):
    sent = _sent(phone, ago=timedelta(minutes=5), wamid="wamid.named")
    sent.contact.name = "Fatima Al Mansoori"
    sent.contact.save(update_fields=["name"])

    messages_ingest(messages=[_incoming(phone, "wamid.in.named", name="fati 🌸")])

    conversation = Conversation.objects.get()
    assert (conversation.list_name, conversation.contact_name) == ("Fatima Al Mansoori", "fati 🌸")
    assert conversation.display_name == "Fatima Al Mansoori"


def test_a_message_answering_no_campaign_keeps_the_whatsapp_name(phone):
    messages_ingest(messages=[_incoming(phone, "wamid.in.unnamed", name="Omar")])

    assert Conversation.objects.get().display_name == "Omar"

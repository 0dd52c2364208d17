import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Conversation, InboxMessage
from inbox.services.replies import ReplyError, ReplyWindowClosed, conversation_reply
from tests.factories import AccountFactory, ConversationFactory, PhoneFactory, UserFactory

pytestmark = pytest.mark.django_db

DEMO_WABA, DEMO_TOKEN, DEMO_PHONE = "100000000000001", "demo-token", "200000000000001"


@pytest.fixture
def meta(simulator, settings):
    settings.WHATSAPP_GRAPH_URL = simulator.url
    return simulator


def _conversation(*, last_inbound_ago: timedelta | None = timedelta(hours=1), token=DEMO_TOKEN):
    account = AccountFactory(waba_id=DEMO_WABA, access_token=token)
    phone = PhoneFactory(account=account, phone_number_id=DEMO_PHONE)
    last_inbound = timezone.now() - last_inbound_ago if last_inbound_ago else None
    return ConversationFactory(
        phone=phone, wa_id="971501234567", last_inbound_at=last_inbound, unread_count=2
    )


def test_reply_reaches_the_customer_and_is_recorded(meta):
    conversation = _conversation()
    user = UserFactory(username="amal")

    message = conversation_reply(
        conversation=conversation, text="  Yes, we open at 9.  ", user=user
    )

    [received] = meta.messages("971501234567")
    assert received["type"] == "text"
    assert received["text"]["body"] == "Yes, we open at 9."
    assert message.wamid.startswith("wamid.")
    assert message.direction == InboxMessage.Direction.OUTBOUND
    assert message.status == "sent"
    assert message.raw["sent_by"] == "amal"
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "Yes, we open at 9."
    assert conversation.unread_count == 0


def test_reply_after_24_hours_is_refused_without_calling_meta(meta):
    conversation = _conversation(last_inbound_ago=timedelta(hours=24, minutes=1))

    with pytest.raises(ReplyWindowClosed, match="24 hours"):
        conversation_reply(conversation=conversation, text="Hello?", user=UserFactory())

    assert meta.messages("971501234567") == []
    assert not InboxMessage.objects.exists()


def test_customer_who_never_wrote_cannot_get_free_text(meta):
    conversation = _conversation(last_inbound_ago=None)
    with pytest.raises(ReplyWindowClosed):
        conversation_reply(conversation=conversation, text="Hi", user=UserFactory())


def test_empty_reply_is_refused(meta):
    with pytest.raises(ReplyError, match="Write a message"):
        conversation_reply(conversation=_conversation(), text="   ", user=UserFactory())


def test_meta_refusal_is_explained_and_nothing_is_recorded(meta):
    conversation = _conversation(token="revoked-token")

    with pytest.raises(ReplyError, match="code 190"):
        conversation_reply(conversation=conversation, text="Hi", user=UserFactory())

    assert not InboxMessage.objects.exists()
    assert Conversation.objects.get().unread_count == 2


def test_unreachable_meta_is_explained(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.WHATSAPP_GRAPH_URL = f"http://127.0.0.1:{port}"  # closed again: nothing listens
    with pytest.raises(ReplyError, match="could not be reached"):
        conversation_reply(conversation=_conversation(), text="Hi", user=UserFactory())


def test_reply_body_is_the_exact_cloud_api_text_message(meta):
    conversation_reply(conversation=_conversation(), text='Price: "50 AED"', user=UserFactory())

    [received] = meta.messages("971501234567")
    assert received == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "971501234567",
        "type": "text",
        "text": {"preview_url": False, "body": 'Price: "50 AED"'},
    }
    assert InboxMessage.objects.get().raw["request"] == received


def test_reply_with_a_nul_character_is_refused_before_meta_is_called(meta):
    conversation = _conversation()

    with pytest.raises(ReplyError, match="NUL characters"):
        conversation_reply(conversation=conversation, text="Hi\x00there", user=UserFactory())

    assert meta.messages("971501234567") == []
    assert not InboxMessage.objects.exists()

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from inbox.models import Conversation, InboxMessage
from tests.factories import (
    AccountFactory,
    ConversationFactory,
    InboxMessageFactory,
    MessageFactory,
    PhoneFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, marketer):
    token = Token.objects.create(user=marketer)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    return client


def test_conversations_unread_first_and_searchable(api):
    now = timezone.now()
    ConversationFactory(contact_name="Read", unread_count=0, last_message_at=now)
    ConversationFactory(
        contact_name="Waiting", unread_count=2, last_message_at=now, wa_id="9715077"
    )

    listed = api.get("/api/conversations/").json()
    found = api.get("/api/conversations/", {"q": "+971 5077"}).json()

    assert [c["contact_name"] for c in listed["results"]] == ["Waiting", "Read"]
    assert [c["contact_name"] for c in found["results"]] == ["Waiting"]


def test_messages_come_newest_first_with_the_campaign_answered(api):
    conversation = ConversationFactory()
    sent = MessageFactory()
    now = timezone.now()
    InboxMessageFactory(conversation=conversation, body="first", timestamp=now - timedelta(hours=1))
    InboxMessageFactory(conversation=conversation, body="second", campaign_message=sent)

    results = api.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]

    assert [m["body"] for m in results] == ["second", "first"]
    assert results[0]["campaign_id"] == sent.campaign_id
    assert results[1]["campaign_id"] is None


def test_reply_is_sent_through_meta(api, simulator, settings):
    settings.WHATSAPP_GRAPH_URL = simulator.url
    phone = PhoneFactory(
        account=AccountFactory(waba_id="100000000000001", access_token="demo-token"),
        phone_number_id="200000000000001",
    )
    conversation = ConversationFactory(
        phone=phone, wa_id="971505550000", last_inbound_at=timezone.now()
    )

    response = api.post(
        f"/api/conversations/{conversation.pk}/reply/", {"text": "On its way"}, "application/json"
    )

    assert response.status_code == 201
    assert response.json()["direction"] == "out"
    assert [m["text"]["body"] for m in simulator.messages("971505550000")] == ["On its way"]


def test_reply_outside_the_window_is_a_conflict(api):
    conversation = ConversationFactory(last_inbound_at=timezone.now() - timedelta(days=3))

    response = api.post(
        f"/api/conversations/{conversation.pk}/reply/", {"text": "Hello"}, "application/json"
    )

    assert response.status_code == 409
    assert "24 hours" in response.json()["detail"]
    assert not InboxMessage.objects.exists()


def test_mark_read(api):
    conversation = ConversationFactory(unread_count=5)
    assert api.post(f"/api/conversations/{conversation.pk}/read/").status_code == 204
    assert Conversation.objects.get().unread_count == 0


def test_a_search_with_a_nul_character_answers_a_list(api):
    ConversationFactory(contact_name="Ana")

    response = api.get("/api/conversations/", {"q": "An\x00a"})

    assert response.status_code == 200
    assert [c["contact_name"] for c in response.json()["results"]] == ["Ana"]

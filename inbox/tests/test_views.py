import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Conversation, InboxMessage
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ConversationFactory,
    InboxMessageFactory,
    MessageFactory,
    PhoneFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

OUT = InboxMessage.Direction.OUTBOUND


def _names(html: str) -> list[str]:
    return [part.split("</span>")[0] for part in html.split('<span class="who">')[1:]]


def test_unread_conversations_come_first_then_newest(marketer_client):
    now = timezone.now()
    ConversationFactory(
        contact_name="Old unread", unread_count=1, last_message_at=now - timedelta(days=2)
    )
    ConversationFactory(contact_name="Newest read", unread_count=0, last_message_at=now)
    ConversationFactory(
        contact_name="Busy", unread_count=4, last_message_at=now - timedelta(hours=1)
    )

    unread_first = marketer_client.get("/inbox/").content.decode()
    newest_first = marketer_client.get("/inbox/?sort=recent").content.decode()

    assert _names(unread_first) == ["Busy", "Old unread", "Newest read"]
    assert _names(newest_first) == ["Newest read", "Busy", "Old unread"]
    assert "5 unread in 2 conversations" in unread_first


def test_search_finds_by_name_or_number(marketer_client):
    ConversationFactory(contact_name="Fatima", wa_id="971501111111")
    ConversationFactory(contact_name="Omar", wa_id="971502222222")

    by_name = marketer_client.get("/inbox/?q=fati").content.decode()
    by_number = marketer_client.get("/inbox/?q=%2B971 50 222").content.decode()
    nothing = marketer_client.get("/inbox/?q=nobody").content.decode()

    assert _names(by_name) == ["Fatima"]
    assert _names(by_number) == ["Omar"]
    assert "No conversation matches" in nothing


def test_list_is_paginated_and_keeps_search_and_order(marketer_client):
    ConversationFactory.create_batch(30, contact_name="Sara")

    first = marketer_client.get("/inbox/?q=sara&sort=recent").content.decode()
    second = marketer_client.get("/inbox/?q=sara&sort=recent&page=2").content.decode()

    assert len(_names(first)) == 25
    assert len(_names(second)) == 5
    assert 'href="?q=sara&amp;sort=recent&amp;page=2"' in first


def test_list_query_count_is_fixed(marketer_client, django_assert_num_queries):
    ConversationFactory.create_batch(5, unread_count=1)
    marketer_client.get("/")

    with django_assert_num_queries(6):
        marketer_client.get("/inbox/")
    with django_assert_num_queries(5):
        marketer_client.get(
            "/inbox/", headers={"HX-Request": "true", "HX-Target": "conversation-list"}
        )


def test_mark_read_from_the_list(marketer_client):
    conversation = ConversationFactory(unread_count=3)

    response = marketer_client.post(
        f"/inbox/{conversation.pk}/read/", {"next": "/inbox/?sort=recent"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/inbox/?sort=recent"
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_mark_read_never_redirects_off_site(marketer_client):
    conversation = ConversationFactory(unread_count=1)
    response = marketer_client.post(
        f"/inbox/{conversation.pk}/read/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == "/inbox/"


@pytest.mark.parametrize("back", ["abc", "0", "inbox", "-1"])
def test_mark_read_with_a_next_that_is_not_a_path_goes_to_the_inbox(marketer_client, back):
    conversation = ConversationFactory(unread_count=1)

    response = marketer_client.post(f"/inbox/{conversation.pk}/read/", {"next": back})

    assert (response.status_code, response["Location"]) == (302, "/inbox/")
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_opening_a_conversation_marks_it_read_and_shows_the_thread(marketer_client):
    conversation = ConversationFactory(unread_count=2, last_inbound_at=timezone.now())
    now = timezone.now()
    InboxMessageFactory(
        conversation=conversation, body="Is it still on sale?", timestamp=now - timedelta(minutes=2)
    )
    InboxMessageFactory(
        conversation=conversation, body="Yes!", direction=OUT, status="read", timestamp=now
    )

    html = marketer_client.get(f"/inbox/{conversation.pk}/").content.decode()

    assert html.index("Is it still on sale?") < html.index("Yes!")
    assert 'class="ticks ticks-read"' in html
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("sent", 'aria-label="Sent">✓<'),
        ("delivered", 'aria-label="Delivered">✓✓<'),
        ("read", 'class="ticks ticks-read" title="Read" aria-label="Read">✓✓<'),
        ("failed", "✕ Not delivered: Re-engagement message"),
    ],
)
def test_outgoing_messages_show_delivery_ticks(marketer_client, status, expected):
    message = InboxMessageFactory(
        direction=OUT,
        status=status,
        error_title="Re-engagement message" if status == "failed" else "",
    )
    html = marketer_client.get(f"/inbox/{message.conversation_id}/").content.decode()
    assert expected in html


def test_reply_shows_the_campaign_it_answers(marketer_client):
    campaign = CampaignFactory(name="Eid sale")
    sent = MessageFactory(contact__campaign=campaign, template=TemplateFactory(name="eid_offer"))
    reply = InboxMessageFactory(body="Interested", campaign_message=sent)

    html = marketer_client.get(f"/inbox/{reply.conversation_id}/").content.decode()

    assert f'href="/campaigns/{campaign.pk}/">Eid sale</a> (eid_offer)' in html


def test_the_list_and_thread_name_the_person_as_the_campaigns_list_does(marketer_client):
    conversation = ConversationFactory(contact_name="fati 🌸", list_name="Fatima Al Mansoori")

    listing = marketer_client.get("/inbox/").content.decode()
    thread = marketer_client.get(f"/inbox/{conversation.pk}/").content.decode()
    found = marketer_client.get("/inbox/", {"q": "mansoori"}).content.decode()

    assert _names(listing) == ["Fatima Al Mansoori"]
    assert _names(found) == ["Fatima Al Mansoori"]
    assert "Fatima Al Mansoori" in thread and "on WhatsApp “fati 🌸”" in thread


def test_a_reply_quotes_the_campaign_message_as_it_was_sent(marketer_client):
    template = TemplateFactory(
        name="eid_offer",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Eid {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off today."},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ],
    )
    texts = [{"type": "text", "text": value} for value in ("Mubarak", "Ana", "30%")]
    body = {
        "template": {
            "name": "eid_offer",
            "components": [
                {"type": "header", "parameters": texts[:1]},
                {"type": "body", "parameters": texts[1:]},
            ],
        }
    }
    sent = MessageFactory(template=template, request_body=json.dumps(body))
    reply = InboxMessageFactory(body="Still on?", campaign_message=sent)

    html = marketer_client.get(f"/inbox/{reply.conversation_id}/").content.decode()
    quote = html.split('<blockquote class="quoted"')[1].split("</blockquote>")[0]

    assert "Eid Mubarak" in quote
    assert "Hi Ana, 30% off today." in quote
    assert "{{" not in quote


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_an_empty_reply_says_so_and_sends_nothing(marketer_client, text):
    conversation = ConversationFactory(last_inbound_at=timezone.now())
    response = marketer_client.post(
        f"/inbox/{conversation.pk}/reply/",
        {"text": text},
        headers={"HX-Request": "true", "HX-Target": "conversation"},
    )

    html = response.content.decode()
    assert 'id="reply-error"' in html and "Write a message before sending." in html
    assert not InboxMessage.objects.exists()


def test_conversation_query_count_does_not_grow_with_messages(
    marketer_client, django_assert_num_queries
):
    conversation = ConversationFactory()
    for _ in range(4):
        InboxMessageFactory(conversation=conversation, campaign_message=MessageFactory())
    marketer_client.get("/")

    with django_assert_num_queries(7):
        marketer_client.get(f"/inbox/{conversation.pk}/")


def test_long_threads_are_paginated_newest_first(marketer_client):
    conversation = ConversationFactory()
    start = timezone.now() - timedelta(hours=2)
    for n in range(55):
        InboxMessageFactory(
            conversation=conversation, body=f"msg-{n:02d}", timestamp=start + timedelta(minutes=n)
        )

    latest = marketer_client.get(f"/inbox/{conversation.pk}/").content.decode()
    earlier = marketer_client.get(f"/inbox/{conversation.pk}/?page=2").content.decode()

    assert "msg-05" in latest and "msg-54" in latest and "msg-04" not in latest
    assert "Earlier messages" in latest
    assert "msg-00" in earlier and "msg-05" not in earlier
    assert 'hx-trigger="every 3s' in latest
    assert 'hx-trigger="every 3s' not in earlier


def test_polling_returns_only_the_thread(marketer_client):
    message = InboxMessageFactory(body="new one")
    response = marketer_client.get(
        f"/inbox/{message.conversation_id}/", headers={"HX-Request": "true", "HX-Target": "thread"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="thread"')
    assert "new one" in html
    assert "reply-box" not in html


def test_closed_window_explains_why_instead_of_a_reply_box(marketer_client):
    conversation = ConversationFactory(last_inbound_at=timezone.now() - timedelta(hours=30))
    html = marketer_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert 'id="window-closed"' in html
    assert "24 hours" in html
    assert "<textarea" not in html


@pytest.fixture
def demo_conversation(simulator, settings):
    settings.WHATSAPP_GRAPH_URL = simulator.url
    account = AccountFactory(waba_id="100000000000001", access_token="demo-token")
    phone = PhoneFactory(account=account, phone_number_id="200000000000001")
    return ConversationFactory(phone=phone, wa_id="971509999999", last_inbound_at=timezone.now())


def test_reply_with_htmx_rerenders_the_conversation(marketer_client, demo_conversation, simulator):
    response = marketer_client.post(
        f"/inbox/{demo_conversation.pk}/reply/",
        {"text": "Thanks for writing!"},
        headers={"HX-Request": "true", "HX-Target": "conversation"},
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="conversation">')
    assert "Thanks for writing!" in html
    assert "<textarea" in html and "Thanks for writing!</textarea>" not in html
    assert [m["text"]["body"] for m in simulator.messages("971509999999")] == [
        "Thanks for writing!"
    ]


def test_reply_without_htmx_redirects_back(marketer_client, demo_conversation):
    response = marketer_client.post(f"/inbox/{demo_conversation.pk}/reply/", {"text": "Hi"})
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/{demo_conversation.pk}/"
    assert InboxMessage.objects.filter(direction=OUT, body="Hi").exists()


def test_refused_reply_keeps_the_draft_and_says_why(marketer_client):
    conversation = ConversationFactory(last_inbound_at=timezone.now() - timedelta(days=2))
    response = marketer_client.post(
        f"/inbox/{conversation.pk}/reply/",
        {"text": "Late answer"},
        headers={"HX-Request": "true", "HX-Target": "conversation"},
    )
    html = response.content.decode()
    assert 'role="alert"' in html and "24 hours" in html
    assert not InboxMessage.objects.exists()


def test_refused_reply_without_htmx_flashes_the_reason(marketer_client):
    conversation = ConversationFactory(last_inbound_at=None)
    response = marketer_client.post(
        f"/inbox/{conversation.pk}/reply/", {"text": "Hello"}, follow=True
    )
    assert "only allows approved templates" in response.content.decode()
    assert Conversation.objects.get().last_message_preview == ""


def test_search_with_a_nul_character_answers_a_page(marketer_client):
    ConversationFactory(contact_name="Ana")

    response = marketer_client.get("/inbox/", {"q": "An\x00a"})

    assert response.status_code == 200

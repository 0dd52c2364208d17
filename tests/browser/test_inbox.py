"""The inbox in Chromium: people named as the marketer's list names them, the campaign message a
reply answers quoted as it was sent, and an empty reply refused on the page."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import InboxMessage
from tests.factories import (
    CampaignFactory,
    ConversationFactory,
    InboxMessageFactory,
    MessageFactory,
    PhoneFactory,
    TemplateFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPRING = [
    {"type": "HEADER", "format": "TEXT", "text": "Spring sale"},
    {"type": "BODY", "text": "Hi {{1}}, {{2}} off every jacket until Sunday."},
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
]


def _sent_body(*values: str) -> str:
    parameters = [{"type": "text", "text": value} for value in values]
    return json.dumps(
        {
            "messaging_product": "whatsapp",
            "to": "971501234567",
            "type": "template",
            "template": {
                "name": "spring_sale",
                "language": {"code": "en_US", "policy": "deterministic"},
                "components": [{"type": "body", "parameters": parameters}],
            },
        }
    )


@pytest.fixture
def answered(marketer):
    now = timezone.now()
    phone = PhoneFactory(display_phone_number="+971 4 000 0001")
    campaign = CampaignFactory(name="Spring sale", owner=marketer)
    template = TemplateFactory(account=phone.account, name="spring_sale", components=SPRING)
    sent = MessageFactory(
        contact__campaign=campaign,
        contact__name="Layla Haddad",
        phone=phone,
        template=template,
        status="read",
        request_body=_sent_body("Layla", "25%"),
        sent_at=now - timedelta(minutes=30),
    )
    conversation = ConversationFactory(
        phone=phone,
        wa_id="971501234567",
        contact_name="Lay",
        list_name="Layla Haddad",
        unread_count=1,
        last_inbound_at=now - timedelta(minutes=5),
        last_message_at=now - timedelta(minutes=5),
        last_message_preview="Do you have it in blue?",
    )
    InboxMessageFactory(
        conversation=conversation,
        body="Do you have it in blue?",
        campaign_message=sent,
        timestamp=now - timedelta(minutes=5),
    )
    InboxMessageFactory(
        conversation=conversation,
        direction=InboxMessage.Direction.OUTBOUND,
        body="Yes, in every size. Shall I keep one for you?",
        status="read",
        timestamp=now - timedelta(minutes=4),
    )
    ConversationFactory(phone=phone, contact_name="Omar", last_message_preview="Thanks!")
    return conversation


def _open(page, live_server):
    page.goto(f"{live_server.url}/inbox/")
    page.get_by_text("Layla Haddad").click()
    page.wait_for_selector("#contact-name")


def test_a_conversation_names_the_person_and_quotes_the_message_answered(
    logged_in_page, live_server, answered, screenshot
):
    page = logged_in_page
    page.goto(f"{live_server.url}/inbox/")
    assert page.locator(f"[data-conversation='{answered.pk}'] .who").inner_text() == (
        "Layla Haddad"
    )
    _open(page, live_server)

    assert page.locator("#contact-name").inner_text().startswith("Layla Haddad")
    quote = page.locator(".bubble-in .quoted")
    assert "Hi Layla, 25% off every jacket until Sunday." in quote.inner_text()
    assert "{{" not in quote.inner_text()
    screenshot(page, "inbox-conversation")


def test_an_empty_reply_is_refused_on_the_page_and_nothing_is_sent(
    logged_in_page, live_server, answered
):
    page = logged_in_page
    sent = InboxMessage.objects.filter(direction=InboxMessage.Direction.OUTBOUND)
    assert sent.count() == 1
    _open(page, live_server)
    page.fill("#reply-text", "   ")
    page.click("#reply-box button[type=submit]")

    assert page.locator("#reply-error").inner_text() == "Write a message before sending."
    assert sent.count() == 1

    page.fill("#reply-text", "")
    page.click("#reply-box button[type=submit]")
    page.wait_for_selector("#reply-error")
    assert sent.count() == 1
    assert page.locator(".bubble-out").count() == 1


def test_the_inbox_fits_a_phone(browser, live_server, marketer, answered, screenshot):
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", marketer.username)
    page.fill("input[name=password]", "s3cret-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    _open(page, live_server)

    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    assert page.locator(".bubble-in .quoted").is_visible()
    screenshot(page, "phone-inbox-conversation")
    phone.close()

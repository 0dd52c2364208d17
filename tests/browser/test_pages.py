"""The marketers' pages in a real browser, on a laptop and on a phone-sized screen."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignSender, Contact, Message
from inbox.models import InboxMessage
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ConversationFactory,
    InboxMessageFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    TemplateFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


BUSY_COUNTERS = {
    "total_count": 1200,
    "sent_count": 640,
    "delivered_count": 600,
    "read_count": 410,
    "replied_count": 37,
    "failed_count": 12,
    "skipped_count": 30,
}


@pytest.fixture
def busy_day(marketer):
    """A running campaign with a week of history, a stopped number and replies in the inbox."""
    phone = PhoneFactory(display_phone_number="+971 55 100 0001", quality_rating="GREEN")
    tired = PhoneFactory(display_phone_number="+971 55 100 0002", quality_rating="YELLOW")
    template = TemplateFactory(name="spring_sale")
    campaign = CampaignFactory(
        name="Spring sale",
        owner=marketer,
        status=Campaign.Status.RUNNING,
        launched_at=timezone.now() - timedelta(minutes=20),
    )
    SenderFactory(campaign=campaign, phone=phone, current_template=template)
    SenderFactory(
        campaign=campaign,
        phone=tired,
        state=CampaignSender.State.EXHAUSTED,
        exhausted_code=131048,
        exhausted_reason="Too many recent messages from this number were reported as spam.",
    )
    ContactFactory.create_batch(
        3, campaign=campaign, state=Contact.State.FAILED, last_error_code=131026
    )
    now = timezone.now()
    for minutes in range(0, 20, 2):
        MessageFactory.create_batch(
            3,
            contact__campaign=campaign,
            phone=phone,
            template=template,
            status=Message.Status.READ,
            sent_at=now - timedelta(minutes=minutes),
        )
    for days in range(1, 6):
        MessageFactory.create_batch(
            days, contact__campaign=campaign, phone=phone, sent_at=now - timedelta(days=days)
        )
    answered = MessageFactory(contact__campaign=campaign, phone=phone, template=template)
    conversation = ConversationFactory(
        phone=phone,
        contact_name="Layla",
        wa_id="971501234567",
        unread_count=1,
        last_inbound_at=now - timedelta(minutes=5),
        last_message_preview="Is the blue one still available?",
    )
    InboxMessageFactory(
        conversation=conversation,
        body="Is the blue one still available?",
        campaign_message=answered,
        timestamp=now - timedelta(minutes=5),
    )
    InboxMessageFactory(
        conversation=conversation,
        direction=InboxMessage.Direction.OUTBOUND,
        body="Yes, in every size.",
        status="read",
        timestamp=now - timedelta(minutes=4),
    )
    ConversationFactory(contact_name="Omar", last_message_preview="Thanks!")
    # The figures of a bigger campaign than the rows above (the factories keep them to a recount).
    Campaign.objects.filter(pk=campaign.pk).update(**BUSY_COUNTERS)
    campaign.refresh_from_db()
    return {"campaign": campaign, "conversation": conversation}


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def _log_in(page, live_server, marketer):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", marketer.username)
    page.fill("input[name=password]", "s3cret-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_dashboard_draws_the_week_chart_and_live_campaigns(logged_in_page, busy_day, screenshot):
    page = logged_in_page
    page.reload()
    page.wait_for_function("Chart.getChart(document.getElementById('week-chart')) !== undefined")
    assert page.locator("#running-campaigns").get_by_text("Spring sale").is_visible()
    assert page.locator("#number-health").get_by_text("+971 55 100 0002").is_visible()
    screenshot(page, "dashboard")


def test_campaign_page_shows_funnel_senders_failures_and_rate(
    logged_in_page, live_server, busy_day, screenshot
):
    page = logged_in_page
    page.goto(f"{live_server.url}/campaigns/{busy_day['campaign'].pk}/")
    page.wait_for_function("Chart.getChart(document.querySelector('canvas[data-chart=rate]'))")
    assert page.locator("[data-stat=sent] .value").inner_text() == "640"
    assert "reported as spam" in page.locator("#senders").inner_text()
    assert "may not use WhatsApp" in page.locator("#failures").inner_text()
    screenshot(page, "campaign")


def test_conversation_shows_ticks_and_the_campaign_answered(
    logged_in_page, live_server, busy_day, screenshot
):
    page = logged_in_page
    page.goto(f"{live_server.url}/inbox/")
    page.get_by_text("Layla").click()
    page.wait_for_url(f"**/inbox/{busy_day['conversation'].pk}/")
    assert page.locator(".ticks-read").is_visible()
    assert page.locator(".answers").get_by_text("Spring sale").is_visible()
    assert page.locator("#reply-text").is_visible()
    screenshot(page, "conversation")


def test_pages_fit_a_phone_screen(phone_page, live_server, marketer, busy_day, screenshot):
    _log_in(phone_page, live_server, marketer)
    pages = {
        "phone-dashboard": "/",
        "phone-campaign": f"/campaigns/{busy_day['campaign'].pk}/",
        "phone-inbox": "/inbox/",
        "phone-conversation": f"/inbox/{busy_day['conversation'].pk}/",
    }
    for name, url in pages.items():
        phone_page.goto(f"{live_server.url}{url}")
        assert _fits_the_screen(phone_page), f"{url} scrolls sideways on a phone"
        assert phone_page.locator("h1").first.is_visible()
        screenshot(phone_page, name)


def test_every_main_page_loads_without_a_console_error_or_a_failed_request(
    logged_in_page, live_server, busy_day
):
    page = logged_in_page
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    pages = ("/", "/campaigns/", "/campaigns/new/", "/inbox/", "/assets/phones/")
    for path in (*pages, "/assets/templates/", "/assets/accounts/", "/tokens/", "/api/docs/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    # The icon is the one request a page does not name in its body: Chromium asks for it itself.
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert page.request.get(icon).status == 200
    assert problems == []

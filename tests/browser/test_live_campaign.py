"""A demo campaign sent through the Meta simulator by a real Celery worker, watched in a browser:
progress moves, pause holds it, resume finishes it; then a customer replies and is answered."""

import time

import pytest

from campaigns.engine import staging
from campaigns.models import Campaign
from inbox.models import Conversation
from tests.browser.conftest import LIVE_MPS, LIVE_NUMBERS
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTACTS = 90  # about 15 s at LIVE_NUMBERS × LIVE_MPS messages per second
SECONDS = 60
POLL_MS = 3500  # longer than the campaign page's 3-second refresh


def _sent(page) -> int:
    return int(page.locator("[data-stat=sent] .value").inner_text().replace(",", ""))


def _wait_for_sent(page, condition, *, what: str) -> int:
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        sent = _sent(page)
        if condition(sent):
            return sent
        page.wait_for_timeout(250)
    raise AssertionError(f"the page never showed {what}; it shows {_sent(page)} sent")


def _wait_until_steady(page) -> int:
    """The running slice finishes its in-flight sends before it sees the pause (one slice)."""
    deadline = time.monotonic() + SECONDS
    before = _sent(page)
    while time.monotonic() < deadline:
        page.wait_for_timeout(POLL_MS)
        now = _sent(page)
        if now == before:
            return now
        before = now
    raise AssertionError("the sent count never stopped moving after the pause")


def test_marketer_watches_pauses_and_resumes_a_campaign(
    logged_in_page, live_server, live_meta, celery_worker, marketer, screenshot
):
    assert LIVE_NUMBERS * LIVE_MPS * 10 < CONTACTS, "the run must last long enough to pause it"
    campaign = staging.campaign_stage(
        world=live_meta.world_dict, owner=marketer, contacts=CONTACTS, name="Browser demo"
    )
    page = logged_in_page
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")

    page.get_by_role("button", name="Launch").click()
    page.locator("#campaign-status", has_text="Running").wait_for()
    first = _wait_for_sent(page, lambda n: n > 0, what="a first message sent")
    _wait_for_sent(page, lambda n: n > first, what="the count moving without a reload")
    screenshot(page, "live-campaign-running")

    page.get_by_role("button", name="Pause").click()
    page.locator("#campaign-status", has_text="Paused").wait_for()
    held = _wait_until_steady(page)
    assert held < CONTACTS
    page.wait_for_timeout(POLL_MS)
    assert _sent(page) == held, "sending went on after the pause"
    screenshot(page, "live-campaign-paused")

    page.get_by_role("button", name="Resume").click()
    page.locator("#campaign-status", has_text="Completed").wait_for(timeout=SECONDS * 1000)
    assert _sent(page) == CONTACTS
    assert page.locator("#progress-text").inner_text().startswith("100% done")
    screenshot(page, "live-campaign-completed")

    stats = live_meta.stats()
    assert stats["accepted_total"] == CONTACTS
    assert set(stats["accepted_by_recipient"].values()) == {1}, "someone was sent twice"
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


def test_marketer_answers_a_reply_and_the_customer_receives_it(
    logged_in_page, live_server, live_meta, celery_worker, marketer, screenshot
):
    staging.campaign_stage(world=live_meta.world_dict, owner=marketer, contacts=10)
    customer = staging.recipient(7).lstrip("+")
    delivery = live_meta.inbound(
        phone_number_id=staging.phone_number_id(1),
        from_=customer,
        text="Is the offer still on?",
        name="Layla",
    )
    assert delivery["webhook_status"] == 200
    _wait_for_conversation(customer)
    page = logged_in_page

    page.goto(f"{live_server.url}/inbox/")
    page.get_by_text("Layla").wait_for(timeout=20_000)  # the list refreshes itself
    page.get_by_text("Layla").click()
    page.get_by_text("Is the offer still on?").wait_for()

    page.fill("#reply-text", "Yes, until Sunday!")
    page.get_by_role("button", name="Send").click()
    page.locator(".bubble-out", has_text="Yes, until Sunday!").wait_for()
    assert page.locator("#reply-text").input_value() == ""

    received = _wait_for_text_message(live_meta, customer)
    assert received["text"]["body"] == "Yes, until Sunday!"
    page.locator(".bubble-out .ticks[aria-label=Read]").wait_for(timeout=20_000)
    screenshot(page, "live-inbox-reply")


def _wait_for_conversation(wa_id: str) -> None:
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        if Conversation.objects.filter(wa_id=wa_id).exists():
            return
        time.sleep(0.2)
    events = list(WebhookEvent.objects.values("id", "processed_at", "attempts", "error"))
    raise AssertionError(f"the reply never reached the inbox; webhook deliveries: {events}")


def _wait_for_text_message(simulator, to: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        texts = [body for body in simulator.messages(to) if body.get("type") == "text"]
        if texts:
            return texts[-1]
        time.sleep(0.1)
    raise AssertionError(f"the simulator never received a text for {to}")

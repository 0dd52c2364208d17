"""What a marketer and an integrator read, in Chromium on a laptop and a 390 px phone: failure
reasons in honest kinds, Retry failed that says what it left, a dashboard that agrees with the
campaign, progress that leaves skipped rows out, the timeline, a read-only admin, an API token
made on its page that works, and the API's documentation."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from campaigns.engine.reactions import failure_reason
from campaigns.models import Campaign, Contact, Message
from campaigns.services import timeline
from campaigns.services.lifecycle import campaign_pause
from templates_app.models import MessageTemplate
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pages import _fits_the_screen, _log_in
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)
from titanflow.whatsapp.errors import classify

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MISSING = "No value for body.2: this row cannot fill any template (spring_sale, spring_sale_b)."


@pytest.fixture
def reported(marketer):
    """A running campaign whose contacts failed in every kind, with a timeline."""
    phone = PhoneFactory(display_phone_number="+971 55 100 0001", verified_name="Demo Retail")
    spring = TemplateFactory(name="spring_sale", account=phone.account)
    plan_b = TemplateFactory(name="spring_sale_b", account=phone.account)
    campaign = CampaignFactory(
        name="Spring sale",
        owner=marketer,
        status=Campaign.Status.RUNNING,
        launched_at=timezone.now() - timedelta(minutes=30),
    )
    sender = SenderFactory(campaign=campaign, phone=phone, current_template=plan_b)
    SenderTemplateFactory(sender=sender, template=spring, position=1)
    SenderTemplateFactory(sender=sender, template=plan_b, position=2)
    launched = timeline.Entry(campaign.pk, "launched", "Launched by mara.", at=campaign.launched_at)
    timeline.events_record(entries=[launched])
    for template in (spring, plan_b):
        MessageFactory.create_batch(
            4, contact__campaign=campaign, contact__state="sent", phone=phone, template=template
        )
    failed = {"campaign": campaign, "state": Contact.State.FAILED}
    ContactFactory.create_batch(2, last_error=MISSING, **failed)
    refused = failure_reason(classify(131026), "Message undeliverable")
    ContactFactory.create_batch(
        3, last_error_code=131026, last_error=refused, payload_template=spring, **failed
    )
    ContactFactory(last_error_code=131026, last_error=refused, payload_template=plan_b, **failed)
    opted_out = failure_reason(classify(131050))
    after = ContactFactory(last_error_code=131050, last_error=opted_out, **failed)
    MessageFactory(
        contact=after, phone=phone, template=plan_b, status=Message.Status.FAILED, error_code=131050
    )
    MessageTemplate.objects.filter(pk=spring.pk).update(
        status=MessageTemplate.Status.PAUSED,
        status_reason="LOW_QUALITY — Customers blocked it too often",
        status_changed_at=timezone.now() - timedelta(minutes=10),
    )
    timeline.events_for_templates(template_ids=[spring.pk])
    campaign_pause(campaign=campaign, reason="Checking the offer", user=marketer)
    # A list of 5,000 with 500 skipped rows, three contacts done: under a tenth of a percent.
    CampaignFactory(
        name="Launch day",
        owner=marketer,
        status=Campaign.Status.RUNNING,
        total_count=5000,
        skipped_count=500,
        sent_count=3,
    )
    campaign.refresh_from_db()
    return campaign


def _rows(page) -> list[str]:
    return page.locator("#failures tbody tr").all_inner_texts()


def test_failures_read_in_honest_kinds_and_retry_says_what_it_left(
    logged_in_page, live_server, reported, screenshot
):
    page = logged_in_page
    page.goto(f"{live_server.url}/campaigns/{reported.pk}/")

    missing = page.locator("#failures tr[data-cause=missing_value]").inner_text()
    assert "Never reached Meta" in missing and "No value for body.2" in missing
    assert "could not be reached" not in missing and "Meta said" not in missing
    refused = page.locator("#failures tr[data-kind=refused]")
    assert refused.count() == 2, "two templates refused the same way are two rows"
    first = refused.first
    assert "spring_sale (en_US)" in first.inner_text()
    assert first.locator("td.num").inner_text() == "3"
    after = page.locator("#failures tr[data-kind=failed_after_acceptance]").inner_text()
    assert "Failed after Meta accepted it" in after and "code 131050" in after

    page.get_by_role("button", name="Retry failed (7)").click()
    page.wait_for_url(f"**/campaigns/{reported.pk}/")
    flash = page.locator(".flash-success").inner_text()
    assert flash.startswith("0 failed contacts are queued again. 7 stay failed:")
    assert "2 because no value for body.2" in flash
    assert reported.contacts.filter(state="failed").count() == 7
    screenshot(page, "failures-campaign")


def test_the_timeline_says_when_and_why_a_template_was_paused(
    logged_in_page, live_server, reported, screenshot
):
    page = logged_in_page
    page.goto(f"{live_server.url}/campaigns/{reported.pk}/")

    entries = page.locator("#timeline li").all_inner_texts()
    assert len(entries) == 3
    assert "Paused by mara: Checking the offer" in entries[0]
    assert "Meta paused the template spring_sale (en_US): LOW_QUALITY" in entries[1]
    assert "Launched by mara." in entries[2]
    assert page.locator("#timeline li[data-kind=template_paused] time").get_attribute("datetime")
    # The failures and the timeline together, for the README.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    box = page.locator("#failures").bounding_box()
    bottom = page.locator("#timeline").bounding_box()
    clip = {
        "x": 0,
        "y": box["y"] - 60,
        "width": 1280,
        "height": bottom["y"] + bottom["height"] - box["y"] + 80,
    }
    page.screenshot(path=str(ARTIFACTS / "timeline-campaign.png"), clip=clip, full_page=True)


def test_dashboard_failed_and_progress_agree_with_the_campaigns(
    logged_in_page, live_server, reported, screenshot
):
    page = logged_in_page
    page.reload()
    campaign_failed = reported.failed_count
    assert campaign_failed == 7

    assert page.locator("[data-stat=failed] .value").inner_text() == "7"
    live = page.locator("#running-campaigns")
    row = live.locator(f"tr[data-campaign='{reported.pk}']")
    assert row.locator("td").last.inner_text() == "7"
    assert live.locator("span.muted", has_text="of 4,500").inner_text() == "<0.1% of 4,500"
    page.goto(f"{live_server.url}/campaigns/{reported.pk}/")
    assert page.locator("[data-stat=failed] .value").inner_text() == "7"
    page.goto(f"{live_server.url}/")
    screenshot(page, "counters-dashboard")


def test_staff_see_a_campaigns_status_and_counters_but_cannot_edit_them(
    page, live_server, staff_user, reported, screenshot
):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", staff_user.username)
    page.fill("input[name=password]", "s3cret-Passw0rd!")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{reported.pk}/change/")

    assert page.locator("select[name=status], input[name=failed_count]").count() == 0
    assert page.locator(".field-status .readonly").inner_text().lower() == "paused"
    assert page.locator(".field-failed_count .readonly").inner_text() == "7"
    screenshot(page, "admin-campaign")


def test_a_token_made_on_its_page_calls_the_api(logged_in_page, live_server, reported, screenshot):
    page = logged_in_page
    page.goto(f"{live_server.url}/tokens/")
    page.get_by_role("button", name="Create a token").click()
    key = page.locator("code.token-key").inner_text()
    screenshot(page, "tokens")

    # Outside the browser, as an integrator's script would: the token alone, no session.
    url = f"{live_server.url}/api/campaigns/{reported.pk}/stats/"
    stats = requests.get(url, headers={"Authorization": f"Token {key}"}, timeout=10)
    assert stats.status_code == 200
    assert stats.json()["counters"]["failed"] == 7

    page.get_by_role("button", name="Revoke it").click()
    page.wait_for_selector("text=You have no API token.")
    refused = requests.get(url, headers={"Authorization": f"Token {key}"}, timeout=10)
    assert refused.status_code == 401


def test_the_api_docs_render_under_the_content_security_policy(
    logged_in_page, live_server, screenshot
):
    page = logged_in_page
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{live_server.url}/api/docs/")

    page.wait_for_selector(".opblock-summary-path[data-path='/api/campaigns/{id}/recipients/']")
    assert page.locator(".opblock").count() > 30
    page.locator(".opblock-summary-path[data-path='/api/campaigns/{id}/stats/']").click()
    page.get_by_role("button", name="Try it out").click()
    page.fill("input[placeholder=id]", "1")
    page.get_by_role("button", name="Execute").click()
    # The session authenticates the request: 404 (no such campaign), not 401.
    page.wait_for_selector(".response .response-col_status")
    status = page.locator(".live-responses-table tr.response .response-col_status").first
    assert status.inner_text().strip().startswith("404")
    assert violations == []
    screenshot(page, "api-docs-full")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"))  # the top of it, for the README


def test_reporting_pages_fit_a_phone_screen(
    phone_page, live_server, marketer, reported, screenshot
):
    _log_in(phone_page, live_server, marketer)
    pages = {
        "phone-counters-dashboard": "/",
        "phone-failures-campaign": f"/campaigns/{reported.pk}/",
        "phone-api-docs": "/api/docs/",
    }
    for name, url in pages.items():
        phone_page.goto(f"{live_server.url}{url}")
        if name == "phone-api-docs":
            phone_page.wait_for_selector(".opblock")
        assert _fits_the_screen(phone_page), f"{url} scrolls sideways on a phone"
        assert phone_page.locator("h1").first.is_visible()
        screenshot(phone_page, name)

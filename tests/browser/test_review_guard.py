"""The review step's guard lines in Chromium: the portfolio budget, the cost estimate by market,
quiet hours typed on the page, and the US numbers a marketing campaign skips."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.cost import rate_card_seed
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY = [{"type": "BODY", "text": "Hi {{1}}, the spring sale starts today."}]
LIST = [
    ("+971501234560", "Layla"),
    ("+971501234561", "Omar"),
    ("+971501234562", "Ana"),
    ("+966501234567", "Fahad"),
    ("+919812345678", "Priya"),
    ("+12025550143", "John"),
]


@pytest.fixture
def campaign(marketer):
    rate_card_seed()  # an earlier transactional test's flush emptied the seeded table
    account = AccountFactory(name="Demo Retail", messaging_limit=6)
    phone = PhoneFactory(account=account, display_phone_number="+971 4 000 0001")
    template = TemplateFactory(account=account, name="spring_sale", components=BODY)
    campaign = CampaignFactory(
        name="Spring sale",
        owner=marketer,
        status=Campaign.Status.READY,
        variable_mapping={str(template.pk): {"body.1": {"column": "Name"}}},
        columns=["Phone", "Name"],
    )
    SenderTemplateFactory(sender=SenderFactory(campaign=campaign, phone=phone), template=template)
    for number, name in LIST:
        ContactFactory(campaign=campaign, phone=number, name=name, variables={"Name": name})
    earlier = timezone.now() - timedelta(hours=20)
    for n in range(3):  # an earlier campaign reached three people today: 3 of 6 left
        MessageFactory(phone=phone, contact__phone=f"+97150999000{n}", sent_at=earlier)
    return campaign


def _log_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "s3cret-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_the_review_shows_the_budget_the_cost_and_quiet_hours_set_on_the_page(
    page, live_server, marketer, campaign, screenshot
):
    _log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/setup/review/")

    frees = timezone.localtime(timezone.now() + timedelta(hours=4))
    budget = page.locator("#budget-line").inner_text()
    assert "3 of 5 recipients fit in the portfolio's limit of 6 per 24 h now" in budget
    assert f"the rest can go from {frees:%H}:" in budget
    # 3 × AE 0.0384 + SA 0.0455 + IN 0.0107 = 0.1714; the US number is skipped.
    assert "Estimated cost: 0.17 USD for 5 messages" in page.locator("#cost-line").inner_text()
    assert page.locator("#cost-lines tr[data-market='AE'] td").nth(2).inner_text() == "3"
    assert "1 US (+1) number will be skipped" in page.locator("#us-line").inner_text()
    assert "No quiet hours" in page.locator("#quiet-line").inner_text()

    page.fill("input[name=quiet_start]", "21:00")
    page.fill("input[name=quiet_end]", "09:00")
    page.click("#guard-check")
    page.wait_for_selector("#quiet-line:has-text('Quiet hours 21:00–09:00')")
    quiet = page.locator("#quiet-line").inner_text()
    assert "in each recipient's local time (from their number)" in quiet
    assert page.input_value("input[name=quiet_start]") == "21:00"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.READY
    page.locator("#guard-review").scroll_into_view_if_needed()
    screenshot(page, "wizard-review-guard")

    page.fill("input[name=quiet_zone]", "Mars/Olympus")
    page.click("#guard-check")
    assert "is not a time zone" in page.locator("#quiet-zone-error").inner_text()

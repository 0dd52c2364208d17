"""The review step and the launch say what the deliverability guard will do: the portfolio's
budget, the cost, quiet hours, the deadline and the US numbers Meta will not deliver to."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Contact
from campaigns.services.lifecycle import campaign_launch
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

MAPPING = {"header.1": {"text": "Hello"}, "body.1": {"text": "Ana"}, "body.2": {"text": "X1"}}


def _review_url(campaign):
    return reverse("campaign-wizard", args=(campaign.pk, "review"))


def _ready(phones, *, category="MARKETING", limit=None):
    phone = PhoneFactory()
    if limit is not None:
        phone.account.messaging_limit = limit
        phone.account.save(update_fields=["messaging_limit"])
    template = TemplateFactory(account=phone.account, category=category, approved_category=category)
    campaign = CampaignFactory(variable_mapping={str(template.pk): MAPPING})
    SenderTemplateFactory(sender=SenderFactory(campaign=campaign, phone=phone), template=template)
    for number in phones:
        ContactFactory(campaign=campaign, phone=number)
    return campaign


def _line(page: str, element_id: str) -> str:
    return page.split(f'id="{element_id}"')[1].split("</p>")[0]


def test_review_says_how_many_fit_in_the_portfolio_limit_and_when_the_rest_can_go(
    marketer_client,
):
    campaign = _ready(["+971501000001", "+971501000002", "+971501000003"], limit=3)
    phone = campaign.senders.get().phone
    oldest = timezone.now() - timedelta(hours=23)
    for n, sent_at in enumerate([oldest, oldest + timedelta(hours=2)]):
        MessageFactory(phone=phone, contact__phone=f"+97150900000{n}", sent_at=sent_at)

    page = marketer_client.get(_review_url(campaign)).content.decode()

    frees = timezone.localtime(oldest + timedelta(hours=24))
    budget = _line(page, "budget-line")
    assert "1 of 3 recipients fit in the portfolio&#x27;s limit of 3 per 24 h now" in budget
    assert f"the rest can go from {frees:%H:%M}" in budget


def test_review_says_every_recipient_fits_when_no_limit_applies(marketer_client):
    page = marketer_client.get(_review_url(_ready(["+971501000001"]))).content.decode()
    assert "1 recipient can go now: no messaging limit applies." in page


def test_review_estimates_the_cost_by_category_and_market(marketer_client):
    campaign = _ready(["+971501000001", "+971501000002", "+966501234567"], category="UTILITY")
    page = marketer_client.get(_review_url(campaign)).content.decode()
    # 2 × 0.0157 (AE) + 1 × 0.0107 (SA) = 0.0421
    assert "Estimated cost: <strong>0.04 USD</strong> for 3 messages" in page
    assert '<tr data-market="AE"><td>Utility</td><td>AE</td><td class="num">2</td>' in page


def test_review_says_who_is_inside_quiet_hours_now(marketer_client):
    campaign = _ready(["+971501000001", "+966501234567"])
    dubai_now = timezone.localtime(timezone.now(), timezone=timezone.get_fixed_timezone(240))
    campaign.quiet_start = (dubai_now - timedelta(hours=1)).time().replace(second=0)
    campaign.quiet_end = (dubai_now + timedelta(hours=2)).time().replace(second=0)
    campaign.quiet_zone = "Asia/Dubai"
    campaign.save()
    page = marketer_client.get(_review_url(campaign)).content.decode()
    quiet = _line(page, "quiet-line")
    assert (
        f"Quiet hours {campaign.quiet_start:%H:%M}–{campaign.quiet_end:%H:%M} in Asia/Dubai"
        in quiet
    )
    assert "2 recipients are inside them now" in quiet


def test_review_warns_that_marketing_templates_skip_us_numbers(marketer_client):
    campaign = _ready(["+971501000001", "+12025550143", "+12125551234"])
    page = marketer_client.get(_review_url(campaign)).content.decode()
    assert "2 US (+1) numbers will be skipped" in _line(page, "us-line")
    assert "Estimated cost: <strong>0.04 USD</strong> for 1 message," in page


def test_deadline_and_quiet_hours_are_saved_from_the_review(marketer_client):
    campaign = _ready(["+971501000001"])
    form = {
        "action": "check",
        "deadline": "2099-03-01T18:00",
        "tz": "Asia/Dubai",
        "quiet_start": "21:00",
        "quiet_end": "09:00",
        "quiet_zone": "",
    }
    response = marketer_client.post(_review_url(campaign), form)

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.deadline.isoformat() == "2099-03-01T14:00:00+00:00"
    assert (f"{campaign.quiet_start:%H:%M}", f"{campaign.quiet_end:%H:%M}") == ("21:00", "09:00")
    assert campaign.status == Campaign.Status.READY
    page = marketer_client.get(_review_url(campaign)).content.decode()
    assert "Deadline 01 Mar 2099" in _line(page, "deadline-line")


@pytest.mark.parametrize(
    ("fields", "element", "sentence"),
    [
        ({"deadline": "2020-01-01T10:00"}, "deadline-error", "The deadline has already passed"),
        ({"deadline": "next tuesday"}, "deadline-error", "must be a date and time"),
        ({"quiet_start": "21:00"}, "quiet-end-error", "need both a start and an end"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet-start-error", "a time like 21:00"),
        (
            {"quiet_start": "21:00", "quiet_end": "21:00"},
            "quiet-end-error",
            "end at another time",
        ),
        (
            {"quiet_start": "21:00", "quiet_end": "07:00", "quiet_zone": "Mars/Olympus"},
            "quiet-zone-error",
            "is not a time zone",
        ),
    ],
)
def test_bad_guard_settings_are_refused_with_a_sentence_by_their_field(
    marketer_client, fields, element, sentence
):
    campaign = _ready(["+971501000001"])
    response = marketer_client.post(_review_url(campaign), {"when": "now", **fields})

    assert response.status_code == 400
    assert sentence in response.content.decode().split(f'id="{element}"')[1].split("</span>")[0]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.READY
    assert (campaign.deadline, campaign.quiet_start, campaign.quiet_zone) == (None, None, "")


def test_launch_skips_us_numbers_of_a_marketing_campaign_with_the_reason():
    campaign = _ready(["+971501000001", "+12025550143", "+14165550123"])
    campaign_launch(campaign=campaign)

    us = Contact.objects.get(campaign=campaign, phone="+12025550143")
    assert (us.state, us.skip_reason) == ("skipped", "us_marketing")
    assert us.last_error.startswith("Meta does not deliver marketing templates to US (+1)")
    states = dict(Contact.objects.filter(campaign=campaign).values_list("phone", "state"))
    assert states["+14165550123"] == "pending"  # Canada shares +1 but is not the US
    campaign.refresh_from_db()
    assert campaign.skipped_count == 1


def test_launch_keeps_us_numbers_of_a_utility_campaign():
    campaign = _ready(["+12025550143"], category="UTILITY")
    campaign_launch(campaign=campaign)
    assert Contact.objects.get(campaign=campaign).state == Contact.State.PENDING


def _results(client, campaign) -> dict[str, dict]:
    response = client.get(reverse("campaign-export", args=(campaign.pk,)))
    text = b"".join(response.streaming_content).decode()
    return {row["phone"]: row for row in csv.DictReader(io.StringIO(text))}


def test_results_csv_explains_us_skips_and_contacts_held_by_metas_per_user_limit(
    marketer_client,
):
    campaign = _ready(["+971501000001", "+12025550143"])
    campaign_launch(campaign=campaign)
    Contact.objects.filter(phone="+971501000001").update(
        last_error_code=131049, last_error="Held by Meta's per-user limit: retried later."
    )
    rows = _results(marketer_client, campaign)
    assert rows["+12025550143"]["explanation"] == (
        "Meta does not deliver marketing templates to US (+1) numbers"
    )
    assert rows["+971501000001"]["explanation"] == "held by Meta's per-user limit"


def test_the_campaign_page_lists_us_skips_with_their_reason(marketer_client):
    campaign = _ready(["+971501000001", "+12025550143"])
    campaign_launch(campaign=campaign)
    page = marketer_client.get(reverse("campaign-detail", args=(campaign.pk,))).content.decode()
    skips = page.split('id="skips"')[1].split("</ul>")[0]
    assert 'data-skip="us_marketing">1 — Meta does not deliver marketing templates to US' in skips

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignSender, Contact
from campaigns.services.timeline import Entry, events_record
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    SenderFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

LIVE_FRAGMENT = {"HX-Request": "true", "HX-Target": "campaign-live"}


def _url(campaign) -> str:
    return f"/campaigns/{campaign.pk}/"


def _stat(html: str, name: str) -> str:
    start = html.index(f'data-stat="{name}"')
    value = html.index('class="value">', start) + len('class="value">')
    return html[value : html.index("<", value)]


def test_funnel_shows_every_counter(marketer_client):
    campaign = CampaignFactory(
        status=Campaign.Status.RUNNING,
        total_count=1000,
        sent_count=400,
        delivered_count=300,
        read_count=150,
        replied_count=12,
        failed_count=20,
        skipped_count=80,
    )

    html = marketer_client.get(_url(campaign)).content.decode()

    assert [_stat(html, name) for name in ("sent", "delivered", "read", "replied")] == [
        "400",
        "300",
        "150",
        "12",
    ]
    assert _stat(html, "failed") == "20"
    assert _stat(html, "skipped") == "80"
    assert "Delivered · 75.0%" in html
    # 420 of the 920 rows to send (80 skipped rows are no work).
    assert "45.7% done · 400 sent, 20 failed of 920 to send (80 of 1,000 rows skipped)" in html


def test_running_campaign_polls_and_finished_one_stops(marketer_client):
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    done = CampaignFactory(status=Campaign.Status.COMPLETED)

    polled = marketer_client.get(_url(running), headers=LIVE_FRAGMENT).content.decode()
    final = marketer_client.get(_url(done), headers=LIVE_FRAGMENT).content.decode()

    assert polled.lstrip().startswith('<section id="campaign-live" hx-get=')
    assert 'hx-trigger="every 3s' in polled
    assert "<h1>" not in polled
    assert "hx-trigger" not in final


def test_polling_fragment_query_count_is_fixed(marketer_client, django_assert_num_queries):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    for _ in range(3):
        SenderFactory(campaign=campaign)
    ContactFactory.create_batch(4, campaign=campaign, state=Contact.State.FAILED)
    for template in TemplateFactory.create_batch(2):
        ContactFactory(
            campaign=campaign, state="failed", last_error_code=132000, payload_template=template
        )
    events_record(entries=[Entry(campaign.pk, "launched", "Launched.") for _ in range(5)])
    marketer_client.get("/")

    # Two failing templates and five entries cost one query each for their names and the list.
    with django_assert_num_queries(8):
        response = marketer_client.get(_url(campaign), headers=LIVE_FRAGMENT)
    assert response.content.decode().count('data-kind="launched"') == 5


def test_page_query_count_is_fixed(marketer_client, django_assert_num_queries):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING, launched_at=timezone.now())
    for _ in range(3):
        MessageFactory(contact__campaign=campaign, phone=SenderFactory(campaign=campaign).phone)
    marketer_client.get("/")

    # Once launched, three more: the rate card and the billable messages (the spend so far) and
    # the messages Meta holds for template pacing.
    with django_assert_num_queries(11):
        response = marketer_client.get(_url(campaign))
    assert response.status_code == 200


def test_the_page_shows_the_spend_so_far_and_held_messages_apart_from_failures(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING, launched_at=timezone.now())
    phone = SenderFactory(campaign=campaign).phone
    for recipient in ("+971501234567", "+971501234568"):
        MessageFactory(
            contact__campaign=campaign,
            contact__phone=recipient,
            phone=phone,
            billable=True,
            pricing_category="MARKETING",
        )
    MessageFactory(
        contact__campaign=campaign, phone=phone, accepted_status="held_for_quality_assessment"
    )
    page = marketer_client.get(_url(campaign)).content.decode()
    assert "Spend so far: <strong>0.08 USD</strong>" in page  # 2 × 0.0384, the AE rate
    assert "2 marketing to AE × 0.0384" in page
    assert "1 held by Meta while it assesses the template" in page
    assert 'data-stat="failed"><div class="value">0<' in page


def test_senders_show_current_template_and_why_one_stopped(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    SenderFactory(campaign=campaign, current_template=TemplateFactory(name="spring_sale"))
    SenderFactory(
        campaign=campaign,
        state=CampaignSender.State.EXHAUSTED,
        exhausted_code=131042,
        exhausted_reason="Payment problem on the WhatsApp account.",
    )

    html = marketer_client.get(_url(campaign)).content.decode()

    assert "spring_sale [en_US]" in html
    assert "Payment problem on the WhatsApp account." in html
    assert "(code 131042)" in html


def test_failures_are_grouped_by_code_with_plain_language(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)
    ContactFactory.create_batch(
        3,
        campaign=campaign,
        state=Contact.State.FAILED,
        last_error_code=131026,
        last_error="Message undeliverable",
    )
    ContactFactory(
        campaign=campaign, state=Contact.State.FAILED, last_error_code=131050, last_error="x"
    )
    ContactFactory(campaign=campaign, state=Contact.State.SENT)

    html = marketer_client.get(_url(campaign)).content.decode()

    table = html[html.index('id="failures"') :]
    assert table.index('data-code="131026"') < table.index('data-code="131050"')
    start = table.index('data-code="131026"')
    row = table[start : table.index("</tr>", start)]
    assert '<td class="num">3</td>' in row
    assert "may not use WhatsApp" in row
    assert "Meta said: Message undeliverable" in row
    assert "stopped marketing messages" in table


def test_a_missing_value_and_a_refusal_read_as_different_kinds(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)
    missing = "No value for body.2: this row cannot fill any template (spring_sale)."
    ContactFactory(campaign=campaign, state=Contact.State.FAILED, last_error=missing)

    html = marketer_client.get(_url(campaign)).content.decode()

    table = html[html.index('id="failures"') :]
    start = table.index('data-cause="missing_value"')
    row = table[start : table.index("</tr>", start)]
    assert "Never reached Meta" in row
    assert "No value for body.2" in row
    assert "could not be reached" not in row
    assert "Meta said" not in row


def test_buttons_follow_the_status(marketer_client):
    def buttons(**fields) -> list[str]:
        return _buttons(marketer_client.get(_url(CampaignFactory(**fields))))

    assert buttons(status=Campaign.Status.READY) == ["Launch", "Cancel"]
    assert buttons(status=Campaign.Status.RUNNING) == ["Pause", "Cancel"]
    assert buttons(status=Campaign.Status.PAUSED, failed_count=4) == [
        "Resume",
        "Retry failed",
        "Cancel",
    ]
    assert buttons(status=Campaign.Status.COMPLETED, failed_count=4) == ["Retry failed"]
    assert buttons(status=Campaign.Status.CANCELLED) == []


def test_pause_reason_is_shown_while_paused(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.PAUSED, pause_reason="No number left.")
    assert "No number left." in marketer_client.get(_url(campaign)).content.decode()


def _buttons(response) -> list[str]:
    html = response.content.decode()
    controls = html[html.index('<div class="controls">') :]
    controls = controls[: controls.index("</div>")]
    return [
        part.split("</button>")[0].split("(")[0].strip()
        for part in controls.split('<button type="submit" class="btn')[1:]
        for part in [part.split(">", 1)[1]]
    ]


def test_send_rate_counts_messages_per_minute(marketer_client):
    launched = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    campaign = CampaignFactory(
        status=Campaign.Status.COMPLETED,
        launched_at=launched,
        completed_at=launched + timedelta(minutes=2, seconds=30),
    )
    MessageFactory.create_batch(3, contact__campaign=campaign, sent_at=launched)
    MessageFactory(contact__campaign=campaign, sent_at=launched + timedelta(minutes=2, seconds=5))
    MessageFactory(sent_at=launched)  # another campaign's

    html = marketer_client.get(_url(campaign)).content.decode()

    start = html.index('id="rate-data"')
    data = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert data["counts"] == [3, 0, 1]
    assert len(data["labels"]) == 3


def test_an_importing_campaign_shows_how_far_the_import_got(marketer_client):
    campaign = CampaignFactory(
        status=Campaign.Status.IMPORTING, import_rows_done=1500, import_rows_estimate=10000
    )
    html = marketer_client.get(_url(campaign), headers=LIVE_FRAGMENT).content.decode()
    assert "1,500 rows of about 10,000" in html
    assert 'hx-trigger="every 3s' in html


def test_unknown_campaign_is_404(marketer_client):
    assert marketer_client.get("/campaigns/999999/").status_code == 404

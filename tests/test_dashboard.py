import json
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignSender, Contact, Message
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
)

pytestmark = pytest.mark.django_db


def _stat(response, name: str) -> str:
    html = response.content.decode()
    start = html.index(f'data-stat="{name}"')
    value = html.index('class="value">', start) + len('class="value">')
    return html[value : html.index("<", value)]


def test_today_counts_each_outcome_once(marketer_client):
    now = timezone.now()
    MessageFactory.create_batch(2, status=Message.Status.SENT, sent_at=now)
    MessageFactory(status=Message.Status.DELIVERED, sent_at=now, replied_at=now)
    MessageFactory(status=Message.Status.READ, sent_at=now)
    MessageFactory(status=Message.Status.FAILED, sent_at=now, error_code=131026)
    MessageFactory(status=Message.Status.READ, sent_at=now - timedelta(days=2))
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    ContactFactory.create_batch(2, campaign=running, state=Contact.State.FAILED)

    response = marketer_client.get("/")

    assert _stat(response, "sent") == "5"
    assert _stat(response, "delivered") == "40.0%"
    assert _stat(response, "read") == "20.0%"
    assert _stat(response, "replied") == "1"
    assert _stat(response, "failed") == "2"


def test_an_empty_day_shows_dashes_not_a_division_error(marketer_client):
    response = marketer_client.get("/")
    assert _stat(response, "sent") == "0"
    assert _stat(response, "delivered") == "–"


def test_week_chart_has_seven_days_with_gaps_filled(marketer_client):
    now = timezone.now()
    MessageFactory.create_batch(3, sent_at=now)
    MessageFactory(sent_at=now - timedelta(days=3), status=Message.Status.READ)
    MessageFactory(sent_at=now - timedelta(days=8))

    response = marketer_client.get("/")

    chart = json.loads(_json_script(response, "week-chart-data"))
    assert len(chart["labels"]) == 7
    assert chart["sent"] == [0, 0, 0, 1, 0, 0, 3]
    assert chart["read"] == [0, 0, 0, 1, 0, 0, 0]


def _json_script(response, element_id: str) -> str:
    html = response.content.decode()
    start = html.index(f'id="{element_id}"')
    body = html.index(">", start) + 1
    return html[body : html.index("</script>", body)]


def test_live_campaigns_show_progress_and_finished_ones_do_not(marketer_client):
    CampaignFactory(
        name="Ramadan offers", status=Campaign.Status.RUNNING, total_count=200, sent_count=50
    )
    CampaignFactory(name="Old news", status=Campaign.Status.COMPLETED)

    html = marketer_client.get("/").content.decode()

    assert "Ramadan offers" in html
    assert "25.0% of 200" in html
    assert "Old news" not in html


def test_progress_leaves_skipped_rows_out_and_never_rounds_a_start_to_zero(marketer_client):
    CampaignFactory(
        name="Launch day", status=Campaign.Status.RUNNING, total_count=5000, skipped_count=500
    )
    CampaignFactory(
        name="First sends",
        status=Campaign.Status.RUNNING,
        total_count=5000,
        sent_count=2,
        failed_count=1,
    )

    html = marketer_client.get("/").content.decode()

    assert "0% of 4,500" in html
    assert "&lt;0.1% of 5,000" in html
    assert "10%" not in html


def test_dashboard_failed_is_the_sum_of_the_campaigns_failed(marketer_client):
    live = CampaignFactory(status=Campaign.Status.RUNNING)
    ContactFactory.create_batch(3, campaign=live, state=Contact.State.FAILED)
    ended_long_ago = CampaignFactory(
        status=Campaign.Status.COMPLETED, completed_at=timezone.now() - timedelta(days=3)
    )
    ContactFactory(campaign=ended_long_ago, state=Contact.State.FAILED)

    response = marketer_client.get("/")

    assert _stat(response, "failed") == "3"


def test_polling_returns_only_the_running_fragment(marketer_client, django_assert_num_queries):
    CampaignFactory(status=Campaign.Status.RUNNING, total_count=10, sent_count=10)
    marketer_client.get("/")  # the session and the user are loaded once per request anyway

    with django_assert_num_queries(5):
        response = marketer_client.get(
            "/", headers={"HX-Request": "true", "HX-Target": "running-campaigns"}
        )

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="running-campaigns"')
    assert "100% of 10" in html
    assert "Number health" not in html


def test_number_health_shows_quality_rate_and_exhausted_senders(marketer_client):
    account = AccountFactory(name="Demo Retail", health="restricted")
    red = PhoneFactory(account=account, display_phone_number="+971 50 111", quality_rating="RED")
    PhoneFactory(account=account, display_phone_number="+971 50 222", quality_rating="GREEN")
    SenderFactory(
        phone=red,
        campaign=CampaignFactory(status=Campaign.Status.RUNNING),
        state=CampaignSender.State.EXHAUSTED,
        exhausted_code=131048,
    )
    SenderFactory(
        phone=red,
        campaign=CampaignFactory(status=Campaign.Status.COMPLETED),
        state=CampaignSender.State.EXHAUSTED,
    )
    MessageFactory.create_batch(2, phone=red)

    html = marketer_client.get("/").content.decode()

    red_row = html[html.index("+971 50 111") : html.index("</tr>", html.index("+971 50 111"))]
    assert 'badge badge-red">RED' in red_row
    assert '<span class="badge badge-red">1</span>' in red_row
    assert "Restricted by Meta" in red_row
    assert '<td class="num hide-sm">2</td>' in red_row
    assert "not sending" in red_row


def test_number_health_says_what_the_guard_does_with_a_yellow_number(marketer_client, settings):
    settings.ENGINE_YELLOW_RATE_FACTOR = 0.5
    PhoneFactory(display_phone_number="+971 50 333", quality_rating="YELLOW", max_mps=80)
    PhoneFactory(display_phone_number="+971 50 444", quality_rating="GREEN", max_mps=80)

    html = marketer_client.get("/").content.decode()

    yellow = html[html.index("+971 50 333") : html.index("</tr>", html.index("+971 50 333"))]
    green = html[html.index("+971 50 444") : html.index("</tr>", html.index("+971 50 444"))]
    assert "slowed to 40/s" in yellow
    assert "quality-effect" not in green


def test_dashboard_query_count_does_not_grow_with_data(marketer_client, django_assert_num_queries):
    for _ in range(3):
        SenderFactory(campaign=CampaignFactory(status=Campaign.Status.RUNNING))
    MessageFactory.create_batch(5)
    marketer_client.get("/")

    # Failed today and clicked today cost one query each; none grows with the rows.
    with django_assert_num_queries(11):
        response = marketer_client.get("/")
    assert response.status_code == 200


def test_pages_of_numbers_keep_other_parameters(marketer_client):
    PhoneFactory.create_batch(12)
    html = marketer_client.get("/?page=1").content.decode()
    assert 'href="?page=1&amp;phones_page=2"' in html


def test_a_marketer_starts_a_campaign_from_the_dashboard(marketer_client):
    assert 'href="/campaigns/new/"' in marketer_client.get("/").content.decode()


def test_a_viewer_is_not_offered_a_new_campaign_on_the_dashboard(viewer_client):
    assert "/campaigns/new/" not in viewer_client.get("/").content.decode()

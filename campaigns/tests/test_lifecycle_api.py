import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.counters import campaign_recount
from campaigns.models import Campaign
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    SenderFactory,
    SenderTemplateFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")
    return client


def _ready():
    campaign = CampaignFactory(status=Campaign.Status.READY)
    SenderTemplateFactory(sender=SenderFactory(campaign=campaign), position=0)
    ContactFactory.create_batch(2, campaign=campaign)
    return campaign


def _url(name, campaign):
    return reverse(f"api-campaign-{name}", kwargs={"pk": campaign.pk})


def test_launch_then_launch_again_conflicts(api):
    campaign = _ready()

    first = api.post(_url("launch", campaign))
    second = api.post(_url("launch", campaign))

    assert first.status_code == 200
    assert first.json()["status"] == "running"
    assert second.status_code == 409
    assert "only a ready campaign" in second.json()["detail"]


def test_schedule_pause_resume_cancel(api):
    campaign = _ready()

    scheduled = api.post(_url("launch", campaign), {"scheduled_at": "2099-01-01T10:00:00Z"})
    assert scheduled.json()["status"] == "scheduled"
    paused = api.post(_url("pause", campaign), {"reason": "Waiting for stock"})
    assert paused.json()["pause_reason"] == "Waiting for stock"
    # Resumed before its time, it waits for that time rather than starting at once.
    assert api.post(_url("resume", campaign)).json()["status"] == "scheduled"
    assert api.post(_url("cancel", campaign)).json()["status"] == "cancelled"
    assert api.post(_url("resume", campaign)).status_code == 409


def test_retry_failed_and_retarget(api):
    campaign = _ready()
    api.post(_url("launch", campaign))
    _fail_all(campaign)

    assert api.post(_url("retry-failed", campaign)).json() == {"requeued": 2, "left": {}}
    _fail_all(campaign)
    created = api.post(_url("retarget", campaign), {"audience": "failed", "name": "Again"})

    assert created.status_code == 201
    assert created.json()["name"] == "Again"
    assert created.json()["total_count"] == 2
    assert api.post(_url("retarget", campaign), {"audience": "bogus"}).status_code == 400


def test_stats_include_senders_and_failures(api):
    campaign = _ready()
    sender = campaign.senders.get()
    ContactFactory(campaign=campaign, state="failed", last_error_code=131026, last_error="gone")
    MessageFactory(contact__campaign=campaign, contact__state="sent", phone=sender.phone)

    stats = api.get(_url("stats", campaign)).json()

    assert stats["senders"][0]["sent"] == 1
    [failure] = stats["failures"]
    assert (failure["kind"], failure["code"], failure["count"]) == ("refused", 131026, 1)
    assert failure["meta_said"] == "gone"
    assert stats["contacts"]["pending"] == 2


def test_the_api_wants_a_token(client):
    campaign = _ready()

    assert client.post(_url("launch", campaign)).status_code in (401, 403)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.READY


def _fail_all(campaign):
    """As if every send had failed on a transient error (counters kept by a recount)."""
    campaign.contacts.update(state="failed", last_error_code=131000, last_error="Meta hiccup")
    campaign_recount(campaign_id=campaign.pk)


def test_launch_takes_a_deadline_and_quiet_hours_and_answers_what_the_guard_will_do(api):
    campaign = _ready()
    ContactFactory(campaign=campaign, phone="+12025550143")  # the template is a marketing one
    answer = api.post(
        _url("launch", campaign),
        {
            "deadline": "2099-01-02T10:00:00Z",
            "quiet_start": "21:00",
            "quiet_end": "08:00",
            "quiet_zone": "Asia/Dubai",
        },
        format="json",
    )

    assert answer.status_code == 200, answer.json()
    guard = answer.json()["guard"]
    assert guard["recipients"] == 2
    assert guard["us_skipped"] == 1
    assert guard["budget"]["text"] == "2 recipients can go now: no messaging limit applies."
    assert guard["cost"]["totals"] == [{"currency": "USD", "amount": "0.07680"}]  # 2 × AE 0.0384
    assert guard["quiet_hours"]["zone"] == "Asia/Dubai"
    assert guard["deadline"]["at"] == "2099-01-02T10:00:00Z"
    campaign.refresh_from_db()
    assert (f"{campaign.quiet_start:%H:%M}", campaign.quiet_zone) == ("21:00", "Asia/Dubai")
    assert campaign.skipped_count == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"deadline": "2001-01-01T10:00:00Z"}, "deadline"),
        ({"quiet_start": "21:00"}, "quiet_end"),
        ({"quiet_start": "9pm", "quiet_end": "08:00"}, "quiet_start"),
        (
            {"quiet_start": "21:00", "quiet_end": "08:00", "quiet_zone": "Nowhere/City"},
            "quiet_zone",
        ),
        ({"scheduled_at": "2099-01-02T10:00:00Z", "deadline": "2099-01-01T10:00:00Z"}, "deadline"),
    ],
)
def test_launch_refuses_guard_settings_it_cannot_keep_by_field(api, fields, field):
    campaign = _ready()
    answer = api.post(_url("launch", campaign), fields, format="json")

    assert answer.status_code == 400
    assert field in answer.json()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.READY

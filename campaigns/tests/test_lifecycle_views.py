import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from campaigns.counters import campaign_recount
from campaigns.models import Campaign
from tests.factories import CampaignFactory, ContactFactory, SenderFactory, SenderTemplateFactory

pytestmark = pytest.mark.django_db


def _ready():
    campaign = CampaignFactory(status=Campaign.Status.READY)
    SenderTemplateFactory(sender=SenderFactory(campaign=campaign), position=0)
    ContactFactory.create_batch(2, campaign=campaign)
    return campaign


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_launch_from_the_page_redirects_to_the_campaign_with_a_message(marketer_client):
    campaign = _ready()

    response = marketer_client.post(reverse("campaign-launch", kwargs={"pk": campaign.pk}))

    assert response.status_code == 302
    assert response["Location"] == reverse("campaign-detail", kwargs={"pk": campaign.pk})
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING
    assert _messages(response) == ["Launched: sending has started."]


def test_launch_with_a_time_schedules(marketer_client):
    campaign = _ready()

    marketer_client.post(
        reverse("campaign-launch", kwargs={"pk": campaign.pk}),
        {"scheduled_at": "2099-05-01T09:30"},
    )

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at.year == 2099


def test_a_refused_transition_shows_the_sentence(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)

    response = marketer_client.post(reverse("campaign-pause", kwargs={"pk": campaign.pk}))

    assert response.status_code == 302
    assert _messages(response) == [
        "This campaign is completed; only a running or scheduled campaign can be paused."
    ]


def test_htmx_posts_get_a_client_redirect(marketer_client):
    campaign = _ready()

    response = marketer_client.post(
        reverse("campaign-cancel", kwargs={"pk": campaign.pk}), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("campaign-detail", kwargs={"pk": campaign.pk})
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED


def test_pause_resume_retry_and_retarget_from_the_page(marketer_client, marketer):
    campaign = _ready()
    pk = campaign.pk
    marketer_client.post(reverse("campaign-launch", kwargs={"pk": pk}))
    marketer_client.post(reverse("campaign-pause", kwargs={"pk": pk}))
    assert Campaign.objects.get(pk=pk).status == Campaign.Status.PAUSED
    marketer_client.post(reverse("campaign-resume", kwargs={"pk": pk}))
    assert Campaign.objects.get(pk=pk).status == Campaign.Status.RUNNING
    _fail_all(campaign)

    retried = marketer_client.post(reverse("campaign-retry-failed", kwargs={"pk": pk}))
    assert _messages(retried)[-1] == "2 failed contacts are queued again."
    _fail_all(campaign)
    response = marketer_client.post(
        reverse("campaign-retarget", kwargs={"pk": pk}), {"audience": "failed"}
    )

    follow_up = Campaign.objects.exclude(pk=pk).get()
    assert follow_up.owner == marketer
    assert follow_up.contacts.count() == 2
    assert response["Location"] == reverse("campaign-detail", kwargs={"pk": follow_up.pk})


def test_actions_refuse_get(marketer_client):
    campaign = _ready()

    response = marketer_client.get(reverse("campaign-launch", kwargs={"pk": campaign.pk}))

    assert response.status_code == 405
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.READY


def _fail_all(campaign):
    """As if every send had failed on a transient error (counters kept by a recount)."""
    campaign.contacts.update(state="failed", last_error_code=131000, last_error="Meta hiccup")
    campaign_recount(campaign_id=campaign.pk)

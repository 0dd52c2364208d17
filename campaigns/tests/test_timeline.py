"""A campaign's timeline: launched, template paused or approved again with Meta's reason, numbers
stopped and why, paused and resumed by whom, completed; on the page and through the API."""

import pytest

from campaigns.engine.progress import campaign_complete_if_done
from campaigns.models import Campaign, CampaignEvent, Contact
from campaigns.services.lifecycle import campaign_launch, campaign_pause, campaign_resume
from campaigns.services.senders import senders_exhaust_for_phone, senders_templates_changed
from campaigns.services.timeline import Entry, events_record
from campaigns.tests.test_lifecycle import _ready_campaign
from templates_app.models import MessageTemplate
from tests.factories import CampaignFactory, SenderFactory, SenderTemplateFactory

pytestmark = pytest.mark.django_db


def _kinds(campaign) -> list[str]:
    return list(campaign.events.order_by("at", "id").values_list("kind", flat=True))


def test_launch_pause_and_resume_say_who_did_them(marketer):
    campaign, _, _ = _ready_campaign()

    campaign_launch(campaign=campaign, user=marketer)
    campaign_pause(campaign=campaign, reason="Checking the offer", user=marketer)
    campaign_resume(campaign=campaign, user=marketer)

    assert _kinds(campaign) == ["launched", "paused", "resumed"]
    paused = campaign.events.get(kind="paused")
    assert paused.actor == marketer
    assert paused.text == f"Paused by {marketer.username}: Checking the offer"


def test_a_template_meta_paused_is_noted_with_its_time_and_reason(marketer):
    campaign, sender, [first] = _ready_campaign(templates=1)
    campaign_launch(campaign=campaign, user=marketer)
    MessageTemplate.objects.filter(pk=first.pk).update(
        status=MessageTemplate.Status.PAUSED, status_reason="LOW_QUALITY"
    )

    senders_templates_changed(template_ids=[first.pk])

    event = campaign.events.get(kind="template_paused")
    assert event.text == f"Meta paused the template {first.name} ({first.language}): LOW_QUALITY."
    assert event.template_id == first.pk
    # With no template left the number stops and the campaign pauses, each with its reason.
    assert _kinds(campaign)[-2:] == ["sender_stopped", "paused"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_an_approved_template_is_noted_again():
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    slot = SenderTemplateFactory(sender=SenderFactory(campaign=campaign), position=1)

    senders_templates_changed(template_ids=[slot.template_id])

    assert campaign.events.get().kind == "template_approved"


def test_a_number_stopped_by_meta_says_why(marketer):
    campaign, sender, _ = _ready_campaign()
    campaign_launch(campaign=campaign, user=marketer)

    senders_exhaust_for_phone(phone_id=sender.phone_id, code=133010, reason="Not registered.")

    stopped = campaign.events.get(kind="sender_stopped")
    assert stopped.code == 133010
    assert stopped.text == f"{sender.phone.display_phone_number} stopped sending: Not registered."


def test_completion_is_noted_once(marketer):
    campaign, _, _ = _ready_campaign()
    campaign_launch(campaign=campaign, user=marketer)
    Contact.objects.filter(campaign=campaign).update(state=Contact.State.SENT)

    assert campaign_complete_if_done(campaign_id=campaign.pk)
    assert not campaign_complete_if_done(campaign_id=campaign.pk)

    assert _kinds(campaign) == ["launched", "completed"]


def test_entries_for_many_campaigns_take_one_insert(django_assert_num_queries):
    campaigns = [CampaignFactory() for _ in range(3)]

    with django_assert_num_queries(1):
        events_record(
            entries=[Entry(c.pk, "portfolio_hold", "Held by the limit.") for c in campaigns]
        )

    assert CampaignEvent.objects.filter(kind="portfolio_hold").count() == 3


def test_the_page_and_the_api_show_the_timeline(marketer, marketer_client):
    campaign, _, _ = _ready_campaign()
    campaign_launch(campaign=campaign, user=marketer)
    campaign_pause(campaign=campaign, reason="Checking the offer", user=marketer)

    html = marketer_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    api = marketer_client.get(f"/api/campaigns/{campaign.pk}/timeline/").json()

    timeline = html[html.index('id="timeline"') :]
    assert timeline.index('data-kind="paused"') < timeline.index('data-kind="launched"')
    assert "Checking the offer" in timeline
    assert [e["kind"] for e in api["results"]] == ["launched", "paused"]
    assert api["results"][1]["actor"] == marketer.username


def test_a_scheduled_campaign_notes_its_schedule_and_its_start(marketer):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.engine.watch import campaigns_start_due

    campaign, _, _ = _ready_campaign()
    campaign_launch(
        campaign=campaign, user=marketer, scheduled_at=timezone.now() + timedelta(hours=1)
    )
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now())

    assert campaigns_start_due() == [campaign.pk]

    assert _kinds(campaign) == ["scheduled", "launched"]
    assert campaign.events.get(kind="launched").text == "Launched at its scheduled time."

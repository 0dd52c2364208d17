"""The review step's "Track link clicks" choice."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db


def _campaign(marketer, *, link: str) -> Campaign:
    campaign = CampaignFactory(owner=marketer)
    phone = PhoneFactory(max_mps=20)
    template = TemplateFactory(account=phone.account)
    SenderTemplateFactory(sender=SenderFactory(campaign=campaign, phone=phone), template=template)
    campaign.variable_mapping = {
        str(template.pk): {"body.1": {"column": "name"}, "body.2": {"column": "offer"}}
    }
    campaign.save()
    ContactFactory(campaign=campaign, variables={"name": "Ana", "offer": link})
    return campaign


def _review(campaign):
    return reverse("campaign-wizard", kwargs={"pk": campaign.pk, "step": "review"})


def test_a_body_link_offers_tracking_and_launching_with_it_ticked_turns_it_on(
    marketer_client, marketer
):
    campaign = _campaign(marketer, link="Open https://shop.example/spring")

    page = marketer_client.get(_review(campaign)).content.decode()
    marketer_client.post(_review(campaign), {"when": "now", "track_clicks": "on"})

    assert 'name="track_clicks"' in page
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.track_clicks


def test_left_unticked_the_campaign_sends_its_links_as_given(marketer_client, marketer):
    campaign = _campaign(marketer, link="https://shop.example/spring")

    marketer_client.post(_review(campaign), {"when": "now"})

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert not campaign.track_clicks


def test_without_any_link_the_choice_is_not_offered_nor_taken(marketer_client, marketer):
    campaign = _campaign(marketer, link="20%")

    page = marketer_client.get(_review(campaign)).content.decode()
    marketer_client.post(_review(campaign), {"when": "now", "track_clicks": "on"})

    assert "Track link clicks" not in page
    campaign.refresh_from_db()
    assert not campaign.track_clicks

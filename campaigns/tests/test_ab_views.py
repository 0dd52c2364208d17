"""The A/B test on the review step (set up, shown) and on the campaign page (figures, pick)."""

import pytest
from django.urls import reverse

from campaigns.ab.models import AbTest
from campaigns.ab.services import ArmSpec, ab_test_configure
from campaigns.models import Campaign, CampaignEvent, Contact
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


def _campaign(marketer, *, contacts=20):
    campaign = CampaignFactory(owner=marketer, status=Campaign.Status.READY)
    phone = PhoneFactory(max_mps=20)
    sender = SenderFactory(campaign=campaign, phone=phone)
    templates = [TemplateFactory(account=phone.account, name=n) for n in ("spring", "summer")]
    for position, template in enumerate(templates):
        SenderTemplateFactory(sender=sender, template=template, position=position)
    rules = {"body.1": {"column": "name"}, "body.2": {"column": "offer"}}
    campaign.variable_mapping = {str(t.pk): rules for t in templates}
    campaign.save()
    for i in range(contacts):
        ContactFactory(campaign=campaign, variables={"name": f"N{i}", "offer": "10%"})
    return campaign, sender, templates


def _review(campaign):
    return reverse("campaign-wizard", kwargs={"pk": campaign.pk, "step": "review"})


def test_the_review_step_saves_the_arms_and_shows_how_the_winner_is_chosen(
    marketer_client, marketer
):
    campaign, _, (spring, summer) = _campaign(marketer)
    answer = marketer_client.post(
        reverse("campaign-ab-setup", kwargs={"pk": campaign.pk}),
        {
            "enabled": "on",
            "test_share": "30",
            "metric": "click",
            "auto_pick_hours": "4",
            "min_sample": "50",
            "arm_template_0": str(spring.pk),
            "arm_template_1": str(spring.pk),
            "arm_values_1": "body.2=25%",
            "arm_template_2": str(summer.pk),
        },
    )
    assert answer.status_code == 302
    test = AbTest.objects.get(campaign=campaign)
    assert (test.test_share, test.metric, test.min_sample) == (30, "click", 50)
    assert [(a.template_id, a.values) for a in test.arms.order_by("position")] == [
        (spring.pk, {}),
        (spring.pk, {"body.2": "25%"}),
        (summer.pk, {}),
    ]
    page = marketer_client.get(_review(campaign)).content.decode()
    assert "split between 3 arms" in page
    assert "automatically by <strong>click rate</strong> 4 h after" in page
    assert "body.2 = “25%”" in page


def test_one_arm_is_refused_with_a_message_and_saves_nothing(marketer_client, marketer):
    campaign, _, (spring, _) = _campaign(marketer)
    data = {"enabled": "on", "test_share": "20", "metric": "read", "min_sample": "1"}
    answer = marketer_client.post(
        reverse("campaign-ab-setup", kwargs={"pk": campaign.pk}),
        {**data, "arm_template_0": str(spring.pk)},
        follow=True,
    )
    assert "2 to 8 arms" in answer.content.decode()
    assert not AbTest.objects.filter(campaign=campaign).exists()


def test_a_viewer_cannot_set_up_a_test_or_pick_a_winner(viewer_client, marketer):
    campaign, _, _ = _campaign(marketer)
    for name in ("campaign-ab-setup", "campaign-ab-winner"):
        assert viewer_client.post(reverse(name, kwargs={"pk": campaign.pk})).status_code == 403


def _launched_test(marketer):
    campaign, sender, (spring, summer) = _campaign(marketer, contacts=40)
    ab_test_configure(
        campaign=campaign, arms=[ArmSpec(spring.pk, {}), ArmSpec(summer.pk, {})], test_share=50
    )
    campaign_launch(campaign=campaign)
    for contact in Contact.objects.filter(campaign=campaign, ab_arm__isnull=False):
        summer_arm = contact.ab_arm.position == 1
        MessageFactory(
            contact=contact,
            phone=sender.phone,
            template=summer if summer_arm else spring,
            status="read" if summer_arm else "delivered",
        )
    return campaign


def test_the_campaign_page_shows_each_arm_and_picks_the_winner(marketer_client, marketer):
    campaign = _launched_test(marketer)
    page = marketer_client.get(reverse("campaign-detail", kwargs={"pk": campaign.pk}))
    html = page.content.decode()
    assert 'id="ab-arms"' in html and 'data-arm="A"' in html and 'data-arm="B"' in html
    assert "Worse, significant" in html  # A read nothing, B everything
    assert "Pick B as winner" in html
    b = campaign.ab_test.arms.get(position=1)

    answer = marketer_client.post(
        reverse("campaign-ab-winner", kwargs={"pk": campaign.pk}), {"arm": b.pk}, follow=True
    )
    html = answer.content.decode()
    assert "Arm B won" in html and "Pick A as winner" not in html
    campaign.ab_test.refresh_from_db()
    assert campaign.ab_test.winner_id == b.pk and campaign.ab_test.decided_by == marketer
    event = CampaignEvent.objects.get(campaign=campaign, kind="ab_winner")
    assert event.actor == marketer


def test_the_campaign_page_with_a_test_pins_its_queries(
    marketer_client, marketer, django_assert_num_queries
):
    campaign = _launched_test(marketer)
    url = reverse("campaign-detail", kwargs={"pk": campaign.pk})
    marketer_client.get(url)
    # The page without a test, plus the arms, their two grouped counts and the rest's count.
    with django_assert_num_queries(_page_queries_without_test(marketer_client, marketer) + 4):
        marketer_client.get(url, headers={"HX-Request": "true", "HX-Target": "campaign-live"})


def _page_queries_without_test(client, marketer) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign, _, _ = _campaign(marketer, contacts=1)
    campaign_launch(campaign=campaign)
    url = reverse("campaign-detail", kwargs={"pk": campaign.pk})
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        client.get(url, headers={"HX-Request": "true", "HX-Target": "campaign-live"})
    return len(queries)

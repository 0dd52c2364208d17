"""The A/B test in a browser: set up on the review step, then read and decided on the campaign
page. Screenshots: ab-review.png, ab-results.png (copied to docs/screenshots/)."""

import pytest

from campaigns.ab.models import AbTest
from campaigns.counters import campaign_recount
from campaigns.models import Contact
from campaigns.services.lifecycle import campaign_launch
from campaigns.tests.test_ab_views import _campaign
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_marketer_sets_up_an_ab_test_reads_its_arms_and_picks_the_winner(
    logged_in_page, live_server, marketer, screenshot
):
    page = logged_in_page
    campaign, sender, (spring, summer) = _campaign(marketer, contacts=60)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/setup/review/")
    page.click("#ab-setup summary")
    page.check("#ab-setup input[name=enabled]")
    page.fill("#ab-setup input[name=test_share]", "40")
    page.select_option("#ab-setup select[name=metric]", "read")
    page.fill("#ab-setup input[name=auto_pick_hours]", "6")
    page.fill("#ab-setup input[name=min_sample]", "5")
    page.select_option("#ab-setup select[name=arm_template_0]", str(spring.pk))
    page.select_option("#ab-setup select[name=arm_template_1]", str(spring.pk))
    page.fill("#ab-setup textarea[name=arm_values_1]", "body.2=25% today only")
    page.select_option("#ab-setup select[name=arm_template_2]", str(summer.pk))
    page.click("#ab-setup button[type=submit]")

    summary = page.locator("#ab-summary")
    summary.wait_for()
    assert "split between 3 arms" in summary.inner_text()
    assert "by read rate 6 h after" in summary.inner_text()
    assert page.locator("#ab-arm-list li").count() == 3
    screenshot(page, "ab-review")

    campaign_launch(campaign=campaign)
    for contact in Contact.objects.filter(campaign=campaign, ab_arm__isnull=False).select_related(
        "ab_arm"
    ):
        reads = contact.ab_arm.position == 1 or contact.pk % 3 == 0  # B reads best
        MessageFactory(
            contact=contact,
            phone=sender.phone,
            template=contact.ab_arm.template,
            status="read" if reads else "delivered",
        )
    Contact.objects.filter(campaign=campaign, ab_arm__isnull=False).update(state="sent")
    campaign_recount(campaign_id=campaign.pk)  # the page's funnel as the engine keeps it
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    arms = page.locator("#ab-arms tbody tr")
    arms.first.wait_for()
    assert arms.count() == 3
    best = page.locator("#ab-arms tr[data-arm=B] [data-significance]")
    assert "Best" in best.inner_text()
    screenshot(page, "ab-results")

    page.click("#ab-arms tr[data-arm=B] button")
    page.locator("#ab-winner").wait_for()
    assert "Arm B won" in page.locator("#ab-winner").inner_text()
    assert page.locator("#ab-arms button").count() == 0
    assert AbTest.objects.get(campaign=campaign).winner.label == "B"

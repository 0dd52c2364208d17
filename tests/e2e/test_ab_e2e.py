"""A/B test end to end: a real worker sends each arm, the simulator reads everything and
clicks promo_b's links far more often, the beat's task (run here on the worker, as the beat
would) picks promo_b automatically once the wait is over, and the rest of the audience gets
it; contacts Meta refused once are sent again with their arm."""

import time
from collections import Counter
from decimal import Decimal

import pytest

from campaigns.ab import assign
from campaigns.ab.models import AbTest
from campaigns.ab.services import ArmSpec, ab_test_configure
from campaigns.ab.stats import arm_figures
from campaigns.clicks.models import TrackedLink
from campaigns.models import Campaign, Contact, Message
from campaigns.services.lifecycle import campaign_launch
from campaigns.tasks import decide_ab_tests
from templates_app.models import MessageTemplate
from tests.e2e.conftest import link_stack, tracked_campaign_stage, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_HOURS = Decimal("0.002")  # 7.2 s after the test share was sent


@pytest.fixture
def ab_stack(live_server, engine_settings):
    rates = {"promo_a": 0.05, "promo_b": 0.95}
    with link_stack(
        live_server, engine_settings, name="ab-worker", template_click_rates=rates, seed=16
    ) as stack:
        yield stack


def _ab_campaign(owner, *, contacts: int) -> Campaign:
    campaign = tracked_campaign_stage(owner, contacts=contacts)
    a, b = MessageTemplate.objects.filter(name__in=("promo_a", "promo_b")).order_by("name")
    ab_test_configure(
        campaign=campaign,
        arms=[ArmSpec(a.pk, {}), ArmSpec(b.pk, {})],
        test_share=50,
        metric="click",
        auto_pick_hours=WAIT_HOURS,
        min_sample=10,
    )
    campaign.refresh_from_db()
    return campaign


def _fail_once(meta, campaign: Campaign, *, n: int) -> list[int]:
    """Meta answers 131000 (transient) to the first send of `n` contacts of the test share."""
    share = Contact.objects.filter(campaign=campaign).order_by("id")
    chosen = [
        contact
        for contact in share
        if assign.arm_position(campaign_id=campaign.pk, phone=contact.phone, share=50, arms=2)
        is not None
    ][:n]
    rules = [{"recipient": c.phone, "error_code": 131000, "count": 1} for c in chosen]
    meta.set_scenario({"rules": rules})
    return [contact.pk for contact in chosen]


def _beat_until_decided(test: AbTest, *, timeout: float) -> AbTest:
    """Queues the beat's task every half second, as the beat would, until it decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        decide_ab_tests.delay()
        time.sleep(0.5)
        test.refresh_from_db()
        if test.winner_id:
            return test
    raise AssertionError("no winner was chosen in time")


def test_the_winner_is_picked_at_the_set_time_and_the_rest_all_get_it(ab_stack, marketer):
    ab_meta, _ = ab_stack
    campaign = _ab_campaign(marketer, contacts=120)
    retried = _fail_once(ab_meta, campaign, n=3)
    campaign = campaign_launch(campaign=campaign)
    test = AbTest.objects.get(campaign=campaign)
    tested = Contact.objects.filter(campaign=campaign, ab_arm__isnull=False)
    held = Contact.objects.filter(campaign=campaign, ab_arm__isnull=True)
    assert 0 < tested.count() < 120

    wait_until(
        lambda: not tested.exclude(state="sent").exists(), timeout=60, what="the test share sent"
    )
    assert not Message.objects.filter(contact__in=held).exists()  # the rest waits

    test = _beat_until_decided(test, timeout=90)
    assert test.test_done_at is not None
    # Not before the set time: the task ran every half second all along.
    assert (test.decided_at - test.test_done_at).total_seconds() >= float(WAIT_HOURS) * 3600
    winner = test.winner
    assert winner.template.name == "promo_b" and test.decided_by is None

    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED,
        timeout=90,
        what="the campaign to complete",
    )
    rest = Message.objects.filter(campaign=campaign, contact__ab_arm__isnull=True)
    assert rest.count() == held.count() > 0
    assert set(rest.values_list("template__name", flat=True)) == {"promo_b"}
    sent_to = Counter(
        Message.objects.filter(campaign=campaign).values_list("contact_id", flat=True)
    )
    assert len(sent_to) == 120 and set(sent_to.values()) == {1}  # nobody twice, nobody left

    arms = {arm.pk: arm.template.name for arm in test.arms.select_related("template")}
    for contact in Contact.objects.filter(pk__in=retried):
        assert contact.attempts >= 1  # Meta refused it once: it was sent again, with its arm
        [message] = Message.objects.filter(contact=contact).select_related("template")
        assert message.template.name == arms[contact.ab_arm_id]

    # Clicks per arm: each clicker once, however the simulator and the redirect were raced.
    wait_until(
        lambda: ab_meta.stats()["webhooks"]["statuses_posted"] >= 3 * 120,
        timeout=60,
        what="every status posted",
    )
    time.sleep(1)  # the last clicks follow their read
    figures = {row.label: row for row in arm_figures(test=test)}
    for label, row in figures.items():
        arm_links = TrackedLink.objects.filter(
            campaign=campaign, contact__ab_arm_id=row.arm_id, first_clicked_at__isnull=False
        )
        assert row.clicked == arm_links.values("contact_id").distinct().count()
        assert set(arm_links.values_list("clicks", flat=True)) <= {1}, label
    assert figures["B"].clicked > figures["A"].clicked
    assert figures["B"].best and figures["A"].significant

"""A/B tests: the split at launch, the engine sending each contact its arm (and keeping it
through retries), the figures and z-test per arm, and the winner (picked or automatic)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.ab import assign
from campaigns.ab.models import AbTest
from campaigns.ab.services import (
    AbTestError,
    ArmSpec,
    ab_test_configure,
    ab_tests_decide_due,
    ab_winner_choose,
    auto_winner,
)
from campaigns.ab.stats import ArmFigures, arm_figures, two_proportion_p
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.models import Campaign, CampaignEvent, Contact, Message
from campaigns.services.lifecycle import campaign_launch
from campaigns.tests.engine_setup import campaign_drive, engine_test_setup, simulators
from templates_app.models import MessageTemplate

pytestmark = pytest.mark.django_db

TEMPLATES = ("promo_a", "promo_b")


@pytest.fixture(autouse=True)
def engine_settings(settings, monkeypatch):
    engine_test_setup(settings, monkeypatch)


@pytest.fixture
def meta(settings):
    world = world_dict(numbers=1, mps=200, templates=TEMPLATES)
    with simulators(settings) as start:
        yield lambda *, scenario=None: start(world, scenario=scenario)


def _campaign(owner, *, contacts=40, share=50, **options) -> Campaign:
    campaign = campaign_stage(
        world=world_dict(numbers=1, mps=200, templates=TEMPLATES), owner=owner, contacts=contacts
    )
    a, b = MessageTemplate.objects.filter(name__in=TEMPLATES).order_by("name")
    arms = [ArmSpec(a.pk, {}), ArmSpec(b.pk, {"body.2": "HALF"})]
    ab_test_configure(campaign=campaign, arms=arms, test_share=share, **options)
    return campaign


def _template_of(body: dict) -> tuple[str, str]:
    sent = body["template"]
    body_part = next(c for c in sent["components"] if c["type"] == "body")
    return sent["name"], body_part["parameters"][1]["text"]


# -- assignment ----------------------------------------------------------------------------------


def test_a_contacts_arm_is_a_pure_function_of_campaign_and_phone():
    first = [
        assign.arm_position(campaign_id=7, phone=f"+9715{i:08d}", share=50, arms=3)
        for i in range(400)
    ]
    again = [
        assign.arm_position(campaign_id=7, phone=f"+9715{i:08d}", share=50, arms=3)
        for i in range(400)
    ]
    other = [
        assign.arm_position(campaign_id=8, phone=f"+9715{i:08d}", share=50, arms=3)
        for i in range(400)
    ]
    assert first == again
    assert first != other
    tested = [arm for arm in first if arm is not None]
    assert 150 < len(tested) < 250  # about half
    assert set(tested) == {0, 1, 2}


def test_the_split_at_launch_matches_the_python_function_and_holds_the_rest(marketer):
    campaign = _campaign(marketer, contacts=60, share=30)
    campaign_launch(campaign=campaign)
    arms = list(campaign.ab_test.arms.order_by("position").values_list("id", flat=True))
    contacts = list(Contact.objects.filter(campaign=campaign).order_by("id"))
    assert len(contacts) == 60
    for contact in contacts:
        position = assign.arm_position(
            campaign_id=campaign.pk, phone=contact.phone, share=30, arms=2
        )
        assert contact.ab_arm_id == (None if position is None else arms[position])
        assert (contact.not_before == assign.HELD_UNTIL) == (position is None)
    assert 0 < sum(c.ab_arm_id is None for c in contacts) < 60


@pytest.mark.parametrize(
    ("arms", "message"),
    [(1, "2 to 8 arms"), (9, "2 to 8 arms")],
)
def test_a_test_needs_two_to_eight_arms(marketer, arms, message):
    campaign = campaign_stage(world=world_dict(numbers=1), owner=marketer, contacts=1)
    template = MessageTemplate.objects.filter(name="promo_a").get()
    specs = [ArmSpec(template.pk, {"body.2": str(i)}) for i in range(arms)]
    with pytest.raises(AbTestError, match=message):
        ab_test_configure(campaign=campaign, arms=specs)


def test_two_arms_sending_the_same_message_are_refused(marketer):
    campaign = campaign_stage(world=world_dict(numbers=1), owner=marketer, contacts=1)
    template = MessageTemplate.objects.filter(name="promo_a").get()
    with pytest.raises(AbTestError, match="same message"):
        ab_test_configure(campaign=campaign, arms=[ArmSpec(template.pk, {})] * 2)


# -- figures and the z-test ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "expected"),
    [
        (50, 100, 40, 100, 0.1552),  # z = 1.4213
        (120, 400, 80, 400, 0.00105),  # z = 3.2660
        (30, 100, 30, 100, 1.0),
        (5, 10, 0, 0, 1.0),  # no sample on one side: no claim
        (0, 10, 0, 10, 1.0),  # nobody at all: no spread
    ],
)
def test_the_two_proportion_test_gives_the_textbook_p_values(x1, n1, x2, n2, expected):
    assert two_proportion_p(x1, n1, x2, n2) == pytest.approx(expected, abs=5e-4)


def _row(label, sent, read):
    return ArmFigures(
        arm_id=ord(label), label=label, template=label, values={}, sent=sent, read=read
    )


def test_the_automatic_winner_needs_the_minimum_sample():
    rows = [_row("A", 100, 30), _row("B", 40, 30)]  # B reads better, on too few sends
    assert auto_winner(rows, metric="read", min_sample=50).label == "A"
    assert auto_winner(rows, metric="read", min_sample=101) is None


def test_a_tie_goes_to_the_larger_sample_then_the_earlier_arm():
    assert (
        auto_winner([_row("A", 100, 50), _row("B", 200, 100)], metric="read", min_sample=1).label
        == "B"
    )
    assert (
        auto_winner([_row("B", 100, 50), _row("A", 100, 50)], metric="read", min_sample=1).label
        == "A"
    )


# -- the engine ---------------------------------------------------------------------------------


def test_each_contact_gets_its_arms_message_and_the_rest_waits_for_the_winner(meta, marketer):
    sim = meta()
    campaign = campaign_launch(campaign=_campaign(marketer))
    campaign = campaign_drive(campaign, rounds=6)
    assert campaign.status == Campaign.Status.RUNNING  # the held contacts keep it open
    test = campaign.ab_test
    arms = {arm.pk: arm for arm in test.arms.select_related("template")}
    tested = Contact.objects.filter(campaign=campaign, ab_arm__isnull=False)
    assert tested.count() > 0
    for contact in tested:
        [body] = sim.messages(contact.phone)
        name, offer = _template_of(body)
        arm = arms[contact.ab_arm_id]
        assert name == arm.template.name
        assert (offer == "HALF") == (arm.position == 1)
    held = Contact.objects.filter(campaign=campaign, ab_arm__isnull=True)
    assert held.count() > 0
    assert set(held.values_list("state", flat=True)) == {"pending"}
    assert not any(sim.messages(phone) for phone in held.values_list("phone", flat=True))

    assert ab_winner_choose(test=test, arm=arms_by_label(test)["B"], user=marketer)
    campaign = campaign_drive(campaign, rounds=10)
    assert campaign.status == Campaign.Status.COMPLETED
    for phone in held.values_list("phone", flat=True):
        [body] = sim.messages(phone)
        assert _template_of(body) == ("promo_b", "HALF")
    [event] = CampaignEvent.objects.filter(campaign=campaign, kind="ab_winner")
    assert event.actor == marketer and "Arm B (promo_b) won by" in event.text
    assert not ab_winner_choose(test=test, arm=arms_by_label(test)["A"])  # decided once


def arms_by_label(test):
    return {arm.label: arm for arm in test.arms.select_related("template")}


def test_a_retried_contact_keeps_its_arm_and_its_bytes(meta, marketer):
    campaign = _campaign(marketer, contacts=12, share=100)
    campaign = campaign_launch(campaign=campaign)
    victim = Contact.objects.filter(campaign=campaign).order_by("id").last()
    sim = meta(scenario=[{"recipient": victim.phone.lstrip("+"), "error_code": 131000}])
    campaign = campaign_drive(campaign, rounds=2)
    victim.refresh_from_db()
    assert victim.attempts == 1 and victim.state == "pending"
    arm, first = victim.ab_arm_id, victim.payload

    sim.set_scenario({"rules": []})
    Contact.objects.filter(pk=victim.pk).update(not_before=None)
    campaign = campaign_drive(campaign, rounds=10)
    assert campaign.status == Campaign.Status.COMPLETED
    victim.refresh_from_db()
    assert victim.ab_arm_id == arm
    assert json.dumps(sim.messages(victim.phone)[-1], separators=(",", ":")) == first
    assert Message.objects.get(contact=victim).request_body == first


def test_the_beat_picks_the_winner_by_its_metric_once_the_wait_is_over(meta, marketer):
    meta()
    campaign = _campaign(marketer, contacts=40, share=50, metric="read", min_sample=1)
    AbTest.objects.filter(campaign=campaign).update(auto_pick_hours=Decimal("1"))
    campaign = campaign_drive(campaign_launch(campaign=campaign), rounds=6)
    test = campaign.ab_test
    b = arms_by_label(test)["B"]
    # Only arm B's readers read: B wins by read rate.
    Message.objects.filter(campaign=campaign, contact__ab_arm=b).update(status="read")

    assert ab_tests_decide_due() == []  # the test share finished now; the wait starts
    test.refresh_from_db()
    assert test.test_done_at is not None and test.winner_id is None
    AbTest.objects.filter(pk=test.pk).update(test_done_at=timezone.now() - timedelta(hours=1))
    assert ab_tests_decide_due() == [test.pk]
    test.refresh_from_db()
    assert test.winner_id == b.pk and test.decided_by is None
    [event] = CampaignEvent.objects.filter(campaign=campaign, kind="ab_winner")
    assert "automatically, by read rate (100.0%)" in event.text
    figures = {row.label: row for row in arm_figures(test=test)}
    assert figures["B"].best and figures["B"].rate("read") == 1.0
    assert figures["A"].read == 0 and figures["A"].significant
    campaign = campaign_drive(campaign, rounds=10)
    assert campaign.status == Campaign.Status.COMPLETED
    held = Message.objects.filter(campaign=campaign, contact__ab_arm__isnull=True)
    assert held.count() > 0
    assert set(held.values_list("template__name", flat=True)) == {"promo_b"}


def test_without_the_minimum_sample_the_beat_leaves_the_pick_to_the_marketer(meta, marketer):
    meta()
    campaign = _campaign(marketer, contacts=20, share=50, min_sample=1000)
    AbTest.objects.filter(campaign=campaign).update(auto_pick_hours=Decimal("0"))
    campaign_drive(campaign_launch(campaign=campaign), rounds=6)
    assert ab_tests_decide_due() == []
    test = AbTest.objects.get(campaign=campaign)
    assert test.winner_id is None and "1000 sent" in test.note
    ab_tests_decide_due()
    assert CampaignEvent.objects.filter(campaign=campaign, text=test.note).count() == 1


def test_a_duplicate_gets_the_same_arms_undecided(marketer):
    from campaigns.services.setup import campaign_duplicate

    campaign = _campaign(marketer, contacts=4)
    test = campaign.ab_test
    ab_winner_choose(test=test, arm=arms_by_label(test)["A"])
    copy = campaign_duplicate(campaign=campaign, user=marketer)
    copied = AbTest.objects.get(campaign=copy)
    assert copied.winner_id is None and copied.test_share == 50
    assert [(a.template_id, a.values) for a in copied.arms.order_by("position")] == [
        (a.template_id, a.values) for a in test.arms.order_by("position")
    ]


def test_a_test_judged_by_clicks_launches_only_with_tracking_on(marketer):
    from campaigns.services.lifecycle import CampaignStateError

    campaign = _campaign(marketer, contacts=4, metric="click")
    with pytest.raises(CampaignStateError, match="Track link clicks"):
        campaign_launch(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(track_clicks=True)
    campaign.refresh_from_db()
    assert campaign_launch(campaign=campaign).status == Campaign.Status.RUNNING

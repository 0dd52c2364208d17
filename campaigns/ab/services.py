"""A/B tests: the marketer's set-up, the split at launch, and the winner (picked by the
marketer or by the beat once the test share has had its time)."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from campaigns.ab import assign
from campaigns.ab.models import AbArm, AbTest
from campaigns.ab.stats import RATES, arm_figures, ranked
from campaigns.models import Campaign, Contact
from campaigns.services.setup import chosen_templates
from campaigns.services.timeline import event_record
from campaigns.signals import campaign_wants_sending
from templates_app.models import MessageTemplate


class AbTestError(ValueError):
    pass


@dataclass
class ArmSpec:
    template_id: int
    values: dict


def ab_test_configure(
    *,
    campaign: Campaign,
    arms: list[ArmSpec],
    test_share: int = 20,
    metric: str = AbTest.Metric.READ,
    auto_pick_hours: Decimal | None = None,
    min_sample: int = 100,
) -> AbTest:
    """Sets (or replaces) the campaign's A/B test before launch."""
    if not campaign.is_editable:
        raise AbTestError("The A/B test can only change before the campaign is launched.")
    if not AbTest.MIN_ARMS <= len(arms) <= AbTest.MAX_ARMS:
        raise AbTestError(f"An A/B test has {AbTest.MIN_ARMS} to {AbTest.MAX_ARMS} arms.")
    if len({(arm.template_id, _key(arm.values)) for arm in arms}) < len(arms):
        raise AbTestError("Two arms send the same message: change a template or a value.")
    if not 1 <= test_share <= 100:
        raise AbTestError("The test share is a percentage from 1 to 100.")
    if metric not in RATES:
        raise AbTestError(f"Unknown metric {metric!r}.")
    templates = MessageTemplate.objects.filter(pk__in=[arm.template_id for arm in arms])
    if sum(template.is_sendable for template in templates) < len({a.template_id for a in arms}):
        raise AbTestError("Each arm needs an approved template.")
    with transaction.atomic():
        test, _ = AbTest.objects.update_or_create(
            campaign=campaign,
            defaults={
                "test_share": test_share,
                "metric": metric,
                "auto_pick_hours": auto_pick_hours,
                "min_sample": min_sample,
            },
        )
        test.arms.all().delete()
        AbArm.objects.bulk_create(
            AbArm(test=test, position=i, template_id=arm.template_id, values=arm.values or {})
            for i, arm in enumerate(arms)
        )
    return test


def ab_test_check_launchable(*, campaign: Campaign) -> None:
    """Raises AbTestError unless some sending number has each arm's template (the API may set
    the arms before the numbers)."""
    test = AbTest.objects.filter(campaign=campaign).first()
    if test is None:
        return
    if test.metric == AbTest.Metric.CLICK and not campaign.track_clicks:
        raise AbTestError("The A/B test is judged by clicks: turn on Track link clicks.")
    offered = {(t.name, t.language) for t in chosen_templates(campaign=campaign)}
    for arm in test.arms.select_related("template").order_by("position"):
        if (arm.template.name, arm.template.language) not in offered:
            raise AbTestError(
                f"Arm {arm.label} sends {arm.template.name}, which no sending number has: "
                "add it to a number's templates or change the arm."
            )


def ab_test_remove(*, campaign: Campaign) -> None:
    if not campaign.is_editable:
        raise AbTestError("The A/B test can only change before the campaign is launched.")
    AbTest.objects.filter(campaign=campaign).delete()


def _key(values: dict) -> tuple:
    return tuple(sorted((values or {}).items()))


def ab_test_start(*, campaign_id: int) -> int:
    """At launch: splits the pending contacts between the arms and holds the rest for the
    winner (one statement). Returns how many contacts it looked at; 0 without a test."""
    test = AbTest.objects.filter(campaign_id=campaign_id, winner__isnull=True).first()
    if test is None:
        return 0
    arm_ids = list(test.arms.order_by("position").values_list("id", flat=True))
    return assign.contacts_assign(campaign_id=campaign_id, share=test.test_share, arm_ids=arm_ids)


def ab_winner_choose(*, test: AbTest, arm: AbArm, user=None, why: str = "") -> bool:
    """Makes `arm` the winner: the held contacts are released and get its message. False when
    the test was decided already (two clicks, the beat and the marketer at once)."""
    if arm.test_id != test.pk:
        raise AbTestError("That arm belongs to another test.")
    now = timezone.now()
    with transaction.atomic():
        moved = AbTest.objects.filter(pk=test.pk, winner__isnull=True).update(
            winner=arm, decided_at=now, decided_by=user if user and user.pk else None
        )
        if not moved:
            return False
        released = assign.contacts_release_to_winner(campaign_id=test.campaign_id)
        who = f" by {user.get_username()}" if user is not None and user.pk else ""
        text = f"Arm {arm.label} ({arm.template.name}) won{who}{why}; {released} contacts get it."
        event_record(campaign_id=test.campaign_id, kind="ab_winner", text=text, user=user)
        transaction.on_commit(
            lambda: campaign_wants_sending.send(sender=Campaign, campaign_id=test.campaign_id)
        )
    test.refresh_from_db()
    return True


def ab_tests_decide_due() -> list[int]:
    """The beat's pass: notes test shares that finished, and picks the winner of each test whose
    wait is over, by its metric among the arms with the minimum sample. Returns decided ids."""
    decided = []
    undecided = AbTest.objects.filter(
        winner__isnull=True, campaign__status__in=(Campaign.Status.RUNNING, Campaign.Status.PAUSED)
    )
    for test in undecided.select_related("campaign").order_by("id"):
        if test.test_done_at is None and not _test_share_done(test):
            continue
        if test.test_done_at is None:
            _note_done(test)
        if test.auto_pick_hours is not None and _auto_pick(test):
            decided.append(test.pk)
    return decided


def _test_share_done(test: AbTest) -> bool:
    busy = Contact.objects.filter(
        campaign_id=test.campaign_id,
        ab_arm__isnull=False,
        state__in=(Contact.State.PENDING, Contact.State.CLAIMED),
    )
    return not busy.exists()


def _note_done(test: AbTest) -> None:
    test.test_done_at = timezone.now()
    test.save(update_fields=["test_done_at"])
    if test.auto_pick_hours is None:
        then = "pick the winner on the campaign page"
    else:
        then = f"the winner is picked by {test.get_metric_display().lower()} at {_due(test):%H:%M}"
    event_record(
        campaign_id=test.campaign_id,
        kind="ab_test_done",
        text=f"The A/B test share was sent to every contact; {then}.",
    )


def _due(test: AbTest):
    return timezone.localtime(test.test_done_at + timedelta(hours=float(test.auto_pick_hours or 0)))


def _auto_pick(test: AbTest) -> bool:
    if timezone.now() < _due(test):
        return False
    arms = list(test.arms.select_related("template").order_by("position"))
    figures = arm_figures(test=test, arms=arms)
    winner = auto_winner(figures, metric=test.metric, min_sample=test.min_sample)
    if winner is None:
        _note_once(test, f"No arm has {test.min_sample} sent messages yet: pick the winner.")
        return False
    arm = next(arm for arm in arms if arm.pk == winner.arm_id)
    rate = f"{winner.rate(test.metric):.1%}"
    why = f" automatically, by {test.get_metric_display().lower()} ({rate})"
    return ab_winner_choose(test=test, arm=arm, why=why)


def auto_winner(figures: list, *, metric: str, min_sample: int):
    """The best arm among those with at least `min_sample` sent; None when none has."""
    eligible = [row for row in figures if row.sent >= min_sample]
    return ranked(eligible, metric)[0] if eligible else None


def _note_once(test: AbTest, note: str) -> None:
    if test.note != note:
        test.note = note
        test.save(update_fields=["note"])
        event_record(campaign_id=test.campaign_id, kind="ab_test_done", text=note)

"""The A/B test as the campaign page and the API show it."""

from datetime import timedelta

from django.db.models import Count, Q

from campaigns.ab.models import AbTest
from campaigns.ab.stats import SIGNIFICANCE, arm_figures
from campaigns.models import Contact


def ab_report(*, campaign) -> dict | None:
    """None without a test; else its set-up, each arm's figures (p-value against the best arm),
    the winner and how many contacts wait for it or got it."""
    try:
        test = campaign.ab_test  # the page loads it with the campaign: no query without a test
    except AbTest.DoesNotExist:
        return None
    arms = list(test.arms.select_related("template").order_by("position"))
    rows = [row.as_dict() for row in arm_figures(test=test, arms=arms)]
    for row, arm in zip(rows, arms, strict=True):  # both in arm order (A, B, ...)
        row.update(template_language=arm.template.language, winner=arm.pk == test.winner_id)
    return {
        "test_share": test.test_share,
        "metric": test.metric,
        "metric_label": test.get_metric_display(),
        "auto_pick_hours": test.auto_pick_hours,
        "min_sample": test.min_sample,
        "significance": SIGNIFICANCE,
        "test_done_at": test.test_done_at,
        "due_at": _due_at(test),
        "winner": next((row["label"] for row in rows if row["winner"]), None),
        "decided_at": test.decided_at,
        "decided_by": test.decided_by.get_username() if test.decided_by else None,
        "note": test.note,
        "arms": rows,
        "rest": _rest(campaign.pk),
    }


def _due_at(test: AbTest):
    if test.test_done_at is None or test.auto_pick_hours is None:
        return None
    return test.test_done_at + timedelta(hours=float(test.auto_pick_hours))


def _rest(campaign_id: int) -> dict:
    """The audience outside the test share: waiting for the winner, or sent it."""
    counts = Contact.objects.filter(campaign_id=campaign_id, ab_arm__isnull=True).aggregate(
        waiting=Count("id", filter=Q(state=Contact.State.PENDING)),
        sent=Count("id", filter=Q(state=Contact.State.SENT)),
    )
    return counts

"""Each arm's funnel and rates, and whether the best arm's lead is significant."""

import math
from dataclasses import dataclass

from django.db.models import Count, Q

from campaigns.clicks.models import TrackedLink
from campaigns.models import Message

SIGNIFICANCE = 0.05
RATES = {"read": "read", "click": "clicked", "reply": "replied"}


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when it cannot say)."""
    if not n1 or not n2:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / spread
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass
class ArmFigures:
    arm_id: int | None
    label: str
    template: str
    values: dict
    sent: int = 0
    delivered: int = 0
    read: int = 0
    clicked: int = 0
    replied: int = 0
    p_value: float | None = None  # against the best arm; None for the best arm itself
    significant: bool = False
    best: bool = False

    def rate(self, metric: str) -> float:
        return getattr(self, RATES[metric]) / self.sent if self.sent else 0.0

    def as_dict(self) -> dict:
        rates = {f"{metric}_rate": round(self.rate(metric), 4) for metric in RATES}
        return {**vars(self), **rates}


def arm_figures(*, test, arms: list | None = None) -> list[ArmFigures]:
    """The test share's figures per arm (two grouped queries), the best arm by the test's
    metric marked, and each other arm's p-value against it."""
    arms = arms if arms is not None else list(test.arms.select_related("template"))
    rows = {arm.pk: ArmFigures(arm.pk, arm.label, arm.template.name, arm.values) for arm in arms}
    for arm_id, counts in _message_counts(test.campaign_id).items():
        if arm_id in rows:
            vars(rows[arm_id]).update(counts)
    for arm_id, clicked in _click_counts(test.campaign_id).items():
        if arm_id in rows:
            rows[arm_id].clicked = clicked
    figures = sorted(rows.values(), key=lambda row: row.label)
    _compare(figures, test.metric)
    return figures


def ranked(figures: list[ArmFigures], metric: str) -> list[ArmFigures]:
    """Best first: the higher rate, then the larger sample, then the earlier arm (A before B)."""
    return sorted(figures, key=lambda row: (-row.rate(metric), -row.sent, row.label))


def _compare(figures: list[ArmFigures], metric: str) -> None:
    if not figures:
        return
    best = ranked(figures, metric)[0]
    best.best = True
    field = RATES[metric]
    for row in figures:
        if row is best:
            continue
        row.p_value = two_proportion_p(
            getattr(best, field), best.sent, getattr(row, field), row.sent
        )
        row.significant = row.p_value < SIGNIFICANCE


def _message_counts(campaign_id: int) -> dict:
    rows = (
        Message.objects.filter(campaign_id=campaign_id, contact__ab_arm__isnull=False)
        .values("contact__ab_arm_id")
        .annotate(
            # Per recipient: a contact sent again after a failed webhook has two messages.
            sent=Count("contact_id", distinct=True),
            delivered=Count(
                "contact_id", distinct=True, filter=Q(status__in=("delivered", "read"))
            ),
            read=Count("contact_id", distinct=True, filter=Q(status="read")),
            replied=Count("contact_id", distinct=True, filter=Q(replied_at__isnull=False)),
        )
        .order_by("contact__ab_arm_id")
    )
    return {row.pop("contact__ab_arm_id"): row for row in rows}


def _click_counts(campaign_id: int) -> dict:
    rows = (
        TrackedLink.objects.filter(
            campaign_id=campaign_id,
            first_clicked_at__isnull=False,
            contact__ab_arm__isnull=False,
        )
        .values("contact__ab_arm_id")
        .annotate(n=Count("contact_id", distinct=True))
        .order_by("contact__ab_arm_id")
    )
    return {row["contact__ab_arm_id"]: row["n"] for row in rows}

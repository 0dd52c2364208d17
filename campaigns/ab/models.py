from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class AbTest(models.Model):
    """A campaign's A/B test: a share of its audience split between arms, the rest held back
    until a winner is chosen (by the marketer, or automatically by `metric` once the test share
    has had `auto_pick_hours` to react)."""

    class Metric(models.TextChoices):
        READ = "read", "Read rate"
        CLICK = "click", "Click rate"
        REPLY = "reply", "Reply rate"

    MIN_ARMS, MAX_ARMS = 2, 8

    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="ab_test"
    )
    test_share = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of the audience that gets the arms; the rest gets the winner.",
    )
    metric = models.CharField(max_length=8, choices=Metric.choices, default=Metric.READ)
    auto_pick_hours = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Pick the winner this long after the test share finished; empty: I pick.",
    )
    min_sample = models.PositiveIntegerField(
        default=100, help_text="An arm needs this many sent messages to win automatically."
    )
    test_done_at = models.DateTimeField(
        null=True, blank=True, help_text="When every contact of the test share reached an end."
    )
    winner = models.ForeignKey(
        "AbArm", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Why the automatic pick could not decide (no arm reached the minimum sample), once.
    note = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(test_share__gte=1, test_share__lte=100),
                name="ab_test_share_percent",
            )
        ]

    def __str__(self):
        return f"A/B test of {self.campaign_id}"

    def copy_to(self, campaign) -> "AbTest":
        """The same set-up and arms for another campaign (a duplicate), undecided."""
        fields = ("test_share", "metric", "auto_pick_hours", "min_sample")
        copy = AbTest.objects.create(campaign=campaign, **{f: getattr(self, f) for f in fields})
        AbArm.objects.bulk_create(
            AbArm(test=copy, position=arm.position, template_id=arm.template_id, values=arm.values)
            for arm in self.arms.order_by("position")
        )
        return copy


class AbArm(models.Model):
    """One arm: a template, with optional fixed values for some of its variables."""

    test = models.ForeignKey(AbTest, on_delete=models.CASCADE, related_name="arms")
    position = models.PositiveSmallIntegerField()
    template = models.ForeignKey(
        "templates_app.MessageTemplate", on_delete=models.PROTECT, related_name="+"
    )
    # {"<slot key>": "text"}: replaces the campaign's mapping for these slots in this arm.
    values = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["test", "position"], name="one_arm_per_position"),
            models.CheckConstraint(
                condition=models.Q(position__lt=AbTest.MAX_ARMS), name="ab_arm_position_max"
            ),
        ]

    def __str__(self):
        return f"{self.label}: {self.template_id}"

    @property
    def label(self) -> str:
        return "ABCDEFGH"[self.position]

"""The review step's A/B form: up to eight arms, each a template with optional fixed values."""

from django import forms

from campaigns.ab.models import AbTest
from campaigns.ab.services import ArmSpec


class AbTestForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Run an A/B test")
    test_share = forms.IntegerField(min_value=1, max_value=100, initial=20, label="Test share (%)")
    metric = forms.ChoiceField(choices=AbTest.Metric.choices, initial=AbTest.Metric.READ)
    auto_pick_hours = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=6,
        decimal_places=3,
        label="Pick automatically after (hours)",
        help_text="After the test share was sent; empty: you pick the winner.",
    )
    min_sample = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, initial=100, label="Minimum sent per arm"
    )

    def __init__(self, *args, templates=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—")] + [(str(t.pk), f"{t.name} ({t.language})") for t in templates]
        for i in range(AbTest.MAX_ARMS):
            self.fields[f"arm_template_{i}"] = forms.ChoiceField(choices=choices, required=False)
            self.fields[f"arm_values_{i}"] = forms.CharField(
                required=False,
                max_length=2000,
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Fixed values, one per line: body.2=20%",
            )

    def arm_rows(self) -> list[tuple]:
        return [
            ("ABCDEFGH"[i], self[f"arm_template_{i}"], self[f"arm_values_{i}"])
            for i in range(AbTest.MAX_ARMS)
        ]

    def clean(self):
        data = super().clean()
        arms = []
        for i in range(AbTest.MAX_ARMS):
            template = data.get(f"arm_template_{i}")
            if template:
                values = _values(data.get(f"arm_values_{i}") or "", self, f"arm_values_{i}")
                arms.append(ArmSpec(int(template), values))
        data["arms"] = arms
        return data


def _values(text: str, form: forms.Form, field: str) -> dict:
    values = {}
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            form.add_error(field, f"“{line}” is not slot=value.")
            continue
        values[key.strip()] = value.strip()
    return values


def initial_for(test: AbTest | None) -> dict:
    if test is None:
        return {}
    initial = {
        "enabled": True,
        "test_share": test.test_share,
        "metric": test.metric,
        "auto_pick_hours": test.auto_pick_hours,
        "min_sample": test.min_sample,
    }
    for arm in test.arms.order_by("position"):
        initial[f"arm_template_{arm.position}"] = str(arm.template_id)
        initial[f"arm_values_{arm.position}"] = "\n".join(f"{k}={v}" for k, v in arm.values.items())
    return initial


def test_of(campaign) -> AbTest | None:
    """The campaign's test, read from the campaign (callers select_related it)."""
    try:
        return campaign.ab_test
    except AbTest.DoesNotExist:
        return None


def ab_review(*, campaign, templates, pending: int) -> dict:
    """The review step's A/B card: the test as set up, and the form to change it."""
    test = test_of(campaign)
    arms = list(test.arms.select_related("template").order_by("position")) if test else []
    tested = round(pending * test.test_share / 100) if test else 0
    return {
        "ab_test": test,
        "ab_arms": arms,
        "ab_test_count": tested,
        "ab_rest_count": pending - tested,
        "ab_form": AbTestForm(initial=initial_for(test), templates=templates),
    }

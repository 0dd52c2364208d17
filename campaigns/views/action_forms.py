"""The few typed fields of the campaign page's lifecycle buttons, parsed by forms so that a bad
value is a message on the page, never a 500 (a NUL in a reason, an impossible date)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

_NUL = "The {field} cannot contain NUL characters."


def _text(field: str, max_length: int) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=max_length,
        error_messages={
            "max_length": f"Keep the {field} under {max_length} characters.",
            "null_characters_not_allowed": _NUL.format(field=field),
        },
    )


class LaunchForm(forms.Form):
    scheduled_at = forms.DateTimeField(
        required=False, error_messages={"invalid": "Pick a real date and time to start sending."}
    )
    # The browser's zone (static/js/review.js fills it); a time without one is in TIME_ZONE.
    tz = forms.CharField(required=False, max_length=64)

    def clean(self):
        data = super().clean()
        moment, name = data.get("scheduled_at"), data.get("tz")
        if moment is not None and name:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise forms.ValidationError(f"Unknown time zone {name!r}.") from exc
            raw = (self.data.get("scheduled_at") or "").strip()
            if parse_datetime(raw) is not None and is_naive(parse_datetime(raw)):
                data["scheduled_at"] = make_aware(parse_datetime(raw), zone)
        return data


class PauseForm(forms.Form):
    reason = _text("reason", 500)


class RetargetForm(forms.Form):
    audience = forms.CharField(required=False, max_length=50)
    name = _text("name", 200)


def form_error_text(form: forms.Form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)

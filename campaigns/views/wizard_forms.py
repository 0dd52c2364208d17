"""The wizard's forms: every field a marketer types is parsed here, so a bad value is a
sentence on the page, never a 500."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.timezone import make_aware

from campaigns.importing import UploadRefused
from campaigns.importing import limits as refusal
from campaigns.importing.service import upload_inspect
from campaigns.services.setup import DEDUP_DAYS_MAX, NAME_MAX_LENGTH

_NUL = "The {field} cannot contain NUL characters."


def _bounded(what: str, low: int, high: int) -> dict:
    sentence = f"{what} must be a whole number from {low} to {high}."
    return {"invalid": sentence, "min_value": sentence, "max_value": sentence}


class CampaignForm(forms.Form):
    """The upload step (also the new-campaign page): name, dedup window and the list.

    The list is read through once here, within the upload limits, so a refused file is a
    sentence on the page before anything is created or stored; `head` keeps what was read.
    `file_required` when the campaign has no list yet."""

    def __init__(self, *args, file_required: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.file_required = file_required
        self.head = None

    name = forms.CharField(
        max_length=NAME_MAX_LENGTH,
        error_messages={
            "required": "Give the campaign a name.",
            "max_length": f"Keep the name under {NAME_MAX_LENGTH} characters.",
            "null_characters_not_allowed": _NUL.format(field="name"),
        },
    )
    dedup_days = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=DEDUP_DAYS_MAX,
        error_messages=_bounded("The dedup window (days)", 0, DEDUP_DAYS_MAX),
    )
    file = forms.FileField(required=False)

    def clean_dedup_days(self) -> int:
        return self.cleaned_data["dedup_days"] or 0

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # The upload handler stopped keeping bytes at the limit; `size` still counts them all.
        if upload is None:
            if self.file_required:
                raise forms.ValidationError("Choose the contact list to upload.")
            return None
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(refusal.too_large(settings.IMPORT_MAX_BYTES))
        try:
            self.head = upload_inspect(uploaded_file=upload)
        except UploadRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return upload

    def error_text(self) -> str:
        return " ".join(str(error) for errors in self.errors.values() for error in errors)


class SendersForm(forms.Form):
    """One field per number and per template of the senders page: use_<phone>, mps_<phone>
    and pos_<phone>_<template> (blank = not used). Fields of numbers or templates that are not
    on the page are ignored."""

    def __init__(self, data, *, numbers: list[dict]):
        super().__init__(data)
        self.numbers = numbers
        for row in numbers:
            phone = row["phone"]
            self.fields[f"use_{phone.pk}"] = forms.BooleanField(required=False)
            self.fields[f"mps_{phone.pk}"] = forms.IntegerField(
                required=False,
                min_value=1,
                max_value=phone.max_mps,
                error_messages=_bounded(f"The rate for {phone}", 1, phone.max_mps),
            )
            for item in row["templates"]:
                template = item["template"]
                self.fields[f"pos_{phone.pk}_{template.pk}"] = forms.IntegerField(
                    required=False,
                    min_value=1,
                    max_value=999,
                    error_messages=_bounded(f"The order of {template.name} for {phone}", 1, 999),
                )

    def senders(self) -> list[dict]:
        """[{"phone_id", "template_ids" (in the typed order), "mps"}] for the ticked numbers."""
        data, senders = self.cleaned_data, []
        for row in self.numbers:
            phone = row["phone"]
            if not data.get(f"use_{phone.pk}"):
                continue
            positions = sorted(
                (data[f"pos_{phone.pk}_{item['template'].pk}"], item["template"].pk)
                for item in row["templates"]
                if data.get(f"pos_{phone.pk}_{item['template'].pk}") is not None
            )
            senders.append(
                {
                    "phone_id": phone.pk,
                    "template_ids": [template_id for _, template_id in positions],
                    "mps": data.get(f"mps_{phone.pk}"),
                }
            )
        return sorted(senders, key=lambda s: s["phone_id"])

    def error_text(self) -> str:
        return " ".join(str(error) for errors in self.errors.values() for error in errors)


def _time_field(what: str) -> forms.TimeField:
    return forms.TimeField(
        required=False,
        input_formats=["%H:%M", "%H:%M:%S"],
        error_messages={"invalid": f"The {what} of the quiet hours must be a time like 21:00."},
    )


class GuardForm(forms.Form):
    """The review step's deadline and quiet hours. The deadline is read in the page's zone
    (`tz`, the browser's), as the schedule is; the guard's own checks then apply."""

    deadline = forms.CharField(required=False, max_length=32)
    quiet_start = _time_field("start")
    quiet_end = _time_field("end")
    quiet_zone = forms.CharField(
        required=False,
        max_length=64,
        error_messages={"max_length": "A time zone name is at most 64 characters."},
    )
    tz = forms.CharField(required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard_errors: dict[str, str] = {}  # per field, from the form or the guard's checks

    def clean_deadline(self):
        text = (self.cleaned_data["deadline"] or "").strip()
        if not text:
            return None
        moment = parse_datetime(text)
        if moment is None:
            raise forms.ValidationError(
                "The deadline must be a date and time, e.g. 2026-12-24 18:00."
            )
        try:
            zone = ZoneInfo(self.data.get("tz") or settings.TIME_ZONE)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError("Unknown time zone.") from exc
        return make_aware(moment.replace(tzinfo=None), zone)

    def clean_quiet_zone(self) -> str:
        return (self.cleaned_data["quiet_zone"] or "").strip()

    def settings(self) -> dict:
        keys = ("deadline", "quiet_start", "quiet_end", "quiet_zone")
        return {key: self.cleaned_data[key] for key in keys}

    def error_text(self) -> str:
        return " ".join(str(error) for errors in self.errors.values() for error in errors)

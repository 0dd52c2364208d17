"""The live campaign page and its per-recipient CSV export."""

import csv
from datetime import timedelta
from itertools import groupby

from django.db.models import Count, Max
from django.db.models.functions import Trunc
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns.clicks.stats import click_funnel
from campaigns.importing.export import spreadsheet_safe
from campaigns.models import Campaign, Contact, Message
from campaigns.services import lifecycle
from titanflow.whatsapp.errors import classify

# The page offers what the lifecycle would accept; the lifecycle still has the last word.
CONTROLS = {
    "launch": lifecycle.LAUNCHABLE,
    "pause": lifecycle.PAUSABLE,
    "resume": (Campaign.Status.PAUSED,),
    "cancel": lifecycle.CANCELLABLE,
    "retry": lifecycle.RETRYABLE,
}
AUDIENCE_LABELS = {
    "failed": "Contacts whose message failed",
    "not_delivered": "Contacts whose message was not delivered",
    "not_read": "Contacts who did not read it",
    "replied": "Contacts who replied",
    "clicked": "Contacts who clicked a link",
    "read_not_clicked": "Contacts who read it but did not click",
}
AUDIENCES = [(name, AUDIENCE_LABELS.get(name, name)) for name in lifecycle.AUDIENCES]
RATE_WINDOW = timedelta(hours=1)


@require_GET
def campaign_detail(request, pk: int):
    campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    target = request.htmx.target if request.htmx else None
    if target == "campaign-live":
        return render(request, "campaigns/detail.html#live", _live_context(campaign))
    if target == "rate-chart":
        return render(request, "campaigns/detail.html#rate", _rate_context(campaign))
    context = {**_live_context(campaign), **_rate_context(campaign), "audiences": AUDIENCES}
    return render(request, "campaigns/detail.html", context)


@require_GET
def campaign_export(request, pk: int):
    campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    response = StreamingHttpResponse(_csv_lines(campaign), content_type="text/csv; charset=utf-8")
    filename = f"campaign-{campaign.pk}-results.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _live_context(campaign: Campaign) -> dict:
    senders = campaign.senders.select_related("phone", "current_template").order_by("id")
    return {
        "campaign": campaign,
        "live": campaign.status in Campaign.IN_PROGRESS,
        "can": {name: campaign.status in states for name, states in CONTROLS.items()},
        "senders": senders,
        "failures": _failures_by_code(campaign),
        "clicks": click_funnel(campaign=campaign) if campaign.track_clicks else None,
    }


def _failures_by_code(campaign: Campaign) -> list[dict]:
    rows = (
        Contact.objects.filter(campaign=campaign, state=Contact.State.FAILED)
        .values("last_error_code")
        .annotate(contacts=Count("id"), example=Max("last_error"))
        .order_by("-contacts", "last_error_code")
    )
    return [{**row, "info": classify(row["last_error_code"])} for row in rows]


def _rate_context(campaign: Campaign) -> dict:
    if not campaign.launched_at:
        return {"rate": None}
    end = campaign.completed_at or timezone.now()
    start = max(campaign.launched_at, end - RATE_WINDOW).replace(second=0, microsecond=0)
    counts = dict(
        Message.objects.filter(campaign=campaign, sent_at__gte=start, sent_at__lte=end)
        .annotate(minute=Trunc("sent_at", "minute"))
        .values_list("minute")
        .annotate(n=Count("id"))
        .order_by("minute")
    )
    minutes = _minutes_between(start, end)
    return {
        "campaign": campaign,
        "live": campaign.status in Campaign.IN_PROGRESS,
        "rate": {
            "labels": [timezone.localtime(minute).strftime("%H:%M") for minute in minutes],
            "counts": [counts.get(minute, 0) for minute in minutes],
        },
    }


def _minutes_between(start, end) -> list:
    count = int((end - start).total_seconds() // 60) + 1
    return [start + timedelta(minutes=offset) for offset in range(count)]


EXPORT_COLUMNS = {
    "id": "contact_id",
    "phone": "phone",
    "name": "name",
    "state": "state",
    "skip_reason": "skip_reason",
    "attempts": "attempts",
    "last_error_code": "error_code",
    "last_error": "error",
    "messages__wamid": "wamid",
    "messages__template__name": "template",
    "messages__phone__display_phone_number": "sender",
    "messages__status": "message_status",
    "messages__error_code": "message_error_code",
    "messages__error_title": "message_error",
    "messages__sent_at": "sent_at",
    "messages__delivered_at": "delivered_at",
    "messages__read_at": "read_at",
    "messages__replied_at": "replied_at",
    "messages__failed_at": "failed_at",
}
EXPORT_CHUNK = 2000


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(campaign: Campaign):
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS.values())
    rows = (
        Contact.objects.filter(campaign=campaign)
        .order_by("id", "messages__id")
        .values_list(*EXPORT_COLUMNS)
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    # A contact retried with another template has several messages; its latest one is its result.
    for _, attempts in groupby(rows, key=lambda row: row[0]):
        *_, latest = attempts
        yield writer.writerow([_cell(value) for value in latest])


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    # Names come from uploaded files: keep spreadsheets from running them as formulas.
    return spreadsheet_safe(value)

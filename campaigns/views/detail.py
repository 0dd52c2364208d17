"""The live campaign page and its per-recipient CSV export."""

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import Trunc
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns.ab.report import ab_report
from campaigns.clicks.stats import click_funnel
from campaigns.importing.export import results_csv_response
from campaigns.models import Campaign, Message
from campaigns.services import lifecycle
from campaigns.services.cost import campaign_spend
from campaigns.services.failure_report import campaign_failures, campaign_skips

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
TIMELINE_SIZE = 50


@require_GET
def campaign_detail(request, pk: int):
    campaigns = Campaign.objects.visible_to(request.user).select_related("ab_test__decided_by")
    campaign = get_object_or_404(campaigns, pk=pk)
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
    return results_csv_response(campaign=campaign)


def _live_context(campaign: Campaign) -> dict:
    senders = campaign.senders.select_related("phone", "current_template").order_by("id")
    return {
        "campaign": campaign,
        "live": campaign.status in Campaign.IN_PROGRESS,
        "can": {name: campaign.status in states for name, states in CONTROLS.items()},
        "senders": senders,
        "failures": campaign_failures(campaign_id=campaign.pk),
        "skips": campaign_skips(campaign_id=campaign.pk) if campaign.skipped_count else [],
        "timeline": campaign.events.order_by("-at", "-id")[:TIMELINE_SIZE],
        "clicks": click_funnel(campaign=campaign) if campaign.track_clicks else None,
        "ab": ab_report(campaign=campaign),
        "pickable": Campaign.LIVE,
        "held": lifecycle.messages_held(campaign=campaign) if campaign.launched_at else {},
        "spend": campaign_spend(campaign=campaign) if campaign.launched_at else None,
    }


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

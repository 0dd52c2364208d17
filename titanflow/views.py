"""The dashboard: today's numbers, the last seven days, running campaigns and number health."""

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns.clicks.models import TrackedLink
from campaigns.models import Campaign, CampaignSender, Message
from templates_app.models import PhoneNumber
from titanflow.access import MARKETER, role_of

CHART_DAYS = 7
PAGE_SIZE = 10
_SERIES = ("sent", "delivered", "read", "failed")
_MINUTE = timedelta(minutes=1)

_DELIVERED = Q(status__in=[Message.Status.DELIVERED, Message.Status.READ])
_READ = Q(status=Message.Status.READ)
_FAILED = Q(status=Message.Status.FAILED)
_REPLIED = Q(replied_at__isnull=False)


@require_GET
def dashboard(request):
    running = _running_campaigns(request)
    if request.htmx and request.htmx.target == "running-campaigns":
        return render(request, "dashboard.html#running", {"running": running})
    context = {
        "running": running,
        "today": {
            **_today_totals(_visible_messages(request.user)),
            "failed": _failed_today(request.user),
        },
        "clicked_today": _clicked_today(request.user),
        "chart": _last_days_chart(_visible_messages(request.user)),
        "phones": _number_health(request),
    }
    return render(request, "dashboard.html", context)


def _start_of_day(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _visible_messages(user):
    # The same rule as Campaign.objects.visible_to, as a join: an IN (subquery) over every
    # campaign would slow the admins' dashboard for nothing.
    if role_of(user) == MARKETER:
        return Message.objects.filter(campaign__owner=user)
    return Message.objects.all()


def _today_totals(messages) -> dict:
    # One pass over today's slice of the sent_at index; FILTER clauses do the rest.
    totals = messages.filter(sent_at__gte=_start_of_day(timezone.localdate())).aggregate(
        sent=Count("id"),
        delivered=Count("id", filter=_DELIVERED),
        read=Count("id", filter=_READ),
        replied=Count("id", filter=_REPLIED),
    )
    totals["delivered_pct"] = _percent(totals["delivered"], totals["sent"])
    totals["read_pct"] = _percent(totals["read"], totals["sent"])
    return totals


def _failed_today(user) -> int:
    # From the campaigns' own counters, so the figure is the sum of what their pages and the API
    # say: Message rows miss every contact that failed before Meta accepted a send.
    start = _start_of_day(timezone.localdate())
    today = Q(status__in=Campaign.IN_PROGRESS) | Q(launched_at__gte=start)
    today |= Q(completed_at__gte=start)
    campaigns = Campaign.objects.visible_to(user).filter(today)
    return campaigns.aggregate(n=Coalesce(Sum("failed_count"), 0))["n"]


def _clicked_today(user) -> int:
    """Recipients whose first click on a tracked link was today (once however many clicks)."""
    links = TrackedLink.objects.filter(first_clicked_at__gte=_start_of_day(timezone.localdate()))
    if role_of(user) == MARKETER:
        links = links.filter(campaign__owner=user)
    return links.values("contact_id").distinct().count()


def _percent(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def _last_days_chart(messages) -> dict:
    first_day = timezone.localdate() - timedelta(days=CHART_DAYS - 1)
    rows = (
        messages.filter(sent_at__gte=_start_of_day(first_day))
        .annotate(day=TruncDate("sent_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=_DELIVERED),
            read=Count("id", filter=_READ),
            failed=Count("id", filter=_FAILED),
        )
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    days = [first_day + timedelta(days=offset) for offset in range(CHART_DAYS)]
    series = {name: [by_day.get(day, {}).get(name, 0) for day in days] for name in _SERIES}
    return {"labels": [day.strftime("%a %d %b") for day in days], **series}


def _running_campaigns(request):
    campaigns = (
        Campaign.objects.visible_to(request.user).in_progress().order_by("-launched_at", "-id")
    )
    return Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))


def _number_health(request):
    # Subqueries, not joined Counts: two joins in one GROUP BY would multiply each other's rows.
    exhausted = (
        CampaignSender.objects.filter(
            phone=OuterRef("pk"),
            state=CampaignSender.State.EXHAUSTED,
            campaign__status__in=Campaign.IN_PROGRESS,
        )
        .values("phone")
        .annotate(n=Count("id"))
        .values("n")
    )
    last_minute = (
        Message.objects.filter(phone=OuterRef("pk"), sent_at__gte=timezone.now() - _MINUTE)
        .values("phone")
        .annotate(n=Count("id"))
        .values("n")
    )
    phones = (
        PhoneNumber.objects.select_related("account")
        .annotate(
            exhausted_senders=Coalesce(Subquery(exhausted, output_field=IntegerField()), 0),
            sent_last_minute=Coalesce(Subquery(last_minute, output_field=IntegerField()), 0),
        )
        .order_by("account__name", "display_phone_number", "id")
    )
    return Paginator(phones, PAGE_SIZE).get_page(request.GET.get("phones_page"))

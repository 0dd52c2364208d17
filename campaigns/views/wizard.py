"""The campaign list and the setup wizard: upload → columns → senders → mapping → review.

Every step is a plain form that works without JavaScript; htmx only adds the live import
progress bar and partial swaps."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.timezone import make_aware
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.ab.forms import ab_review
from campaigns.clicks.setup import campaign_track_clicks, tracking_offer
from campaigns.importing import ImportFileError, UploadRefused, import_enqueue, import_stage
from campaigns.importing.columns import read_head
from campaigns.importing.export import REASON_TEXT, skipped_rows_csv
from campaigns.importing.phones import region_choices
from campaigns.models import Campaign
from campaigns.services import setup
from campaigns.services.guard_review import campaign_set_guard
from campaigns.services.lifecycle import CampaignStateError, campaign_launch
from campaigns.views import wizard_steps as steps
from campaigns.views.wizard_forms import CampaignForm, GuardForm, SendersForm
from titanflow.access import requires
from titanflow.audit import audit_record

PAGE_SIZE = 25


def _refused(request) -> int:
    # htmx does not swap 4xx answers, and boosted forms must show their errors.
    return 200 if request.htmx else 400


def _step_url(campaign: Campaign, step: str) -> str:
    return reverse("campaign-wizard", kwargs={"pk": campaign.pk, "step": step})


@require_GET
def campaign_list(request):
    status = request.GET.get("status", "")
    campaigns = (
        Campaign.objects.visible_to(request.user)
        .select_related("owner")
        .order_by("-created_at", "-id")
    )
    if status in Campaign.Status.values:
        campaigns = campaigns.filter(status=status)
    page = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "statuses": Campaign.Status.choices}
    if request.htmx:
        return render(request, "campaigns/list.html#table", context)
    return render(request, "campaigns/list.html", context)


@require_http_methods(["GET", "POST"])
@requires("campaign.create")
def campaign_new(request):
    if request.method == "GET":
        return render(request, "campaigns/wizard/new.html", {"values": {"dedup_days": 0}})
    form = CampaignForm(request.POST, request.FILES)
    try:
        if not form.is_valid():
            raise setup.SetupError(form.error_text())
        # One transaction: a refused list leaves no draft behind (and stored no file).
        with transaction.atomic():
            campaign = setup.campaign_create(
                name=form.cleaned_data["name"],
                owner=request.user,
                dedup_days=form.cleaned_data["dedup_days"],
            )
            import_stage(campaign=campaign, uploaded_file=form.cleaned_data["file"], head=form.head)
    except (setup.SetupError, UploadRefused) as exc:
        context = {"error": str(exc), "values": request.POST}
        return render(request, "campaigns/wizard/new.html", context, status=_refused(request))
    audit_record(user=request.user, action="campaign.create", obj=campaign, via="page")
    return redirect(_step_url(campaign, "columns"))


@require_http_methods(["GET", "POST"])
@requires("campaign.change")
def campaign_wizard(request, pk: int, step: str):
    campaigns = Campaign.objects.visible_to(request.user).select_related("ab_test")
    campaign = get_object_or_404(campaigns, pk=pk)
    handler = _STEPS.get(step)
    if handler is None:
        raise Http404("No such step")
    if not campaign.is_editable and campaign.status != Campaign.Status.IMPORTING:
        messages.info(request, "This campaign has been launched; its setup can no longer change.")
        return redirect("campaign-detail", pk=campaign.pk)
    return handler(request, campaign)


def _render(request, campaign: Campaign, step: str, context: dict, status: int = 200):
    context = {"campaign": campaign, "step": step, "steps": steps.STEPS, **context}
    return render(request, f"campaigns/wizard/{step}.html", context, status=status)


def _upload_step(request, campaign: Campaign):
    if request.method == "GET":
        return _render(request, campaign, "upload", {"values": campaign.__dict__})
    form = CampaignForm(request.POST, request.FILES, file_required=not campaign.source_file)
    try:
        if not form.is_valid():
            raise setup.SetupError(form.error_text())
        # A refused list also undoes the rename: the step changes all or nothing.
        with transaction.atomic():
            setup.campaign_update(
                campaign=campaign,
                name=form.cleaned_data["name"],
                dedup_days=form.cleaned_data["dedup_days"],
            )
            upload = form.cleaned_data["file"]
            if upload is not None:
                import_stage(campaign=campaign, uploaded_file=upload, head=form.head)
    except (setup.SetupError, ImportFileError) as exc:
        campaign.refresh_from_db()
        context = {"error": str(exc), "values": request.POST}
        return _render(request, campaign, "upload", context, status=_refused(request))
    return redirect(_step_url(campaign, "columns"))


def _columns_step(request, campaign: Campaign):
    if request.method == "POST":
        try:
            import_enqueue(
                campaign=campaign,
                phone_column=request.POST.get("phone_column", ""),
                name_column=request.POST.get("name_column", ""),
                phone_region=request.POST.get("phone_region", ""),
            )
        except ImportFileError as exc:
            messages.error(request, str(exc))
        return redirect(_step_url(campaign, "columns"))
    report = campaign.import_report or {}
    context = {"report": report, "skips": _skip_rows(report.get("skipped", {}))}
    if request.htmx and request.htmx.target == "import-progress":
        return render(
            request, "campaigns/wizard/columns.html#progress", {"campaign": campaign, **context}
        )
    context["head"] = _head(campaign)
    context["regions"] = region_choices()
    return _render(request, campaign, "columns", context)


def _head(campaign: Campaign) -> dict:
    if not campaign.source_file:
        return {}
    try:
        header, rows = read_head(campaign.source_file.path, campaign.source_name)
    except (ImportFileError, OSError) as exc:
        return {"error": str(exc)}
    return {"header": header, "rows": [row + [""] * (len(header) - len(row)) for row in rows]}


def _senders_step(request, campaign: Campaign):
    if request.method == "POST":
        return _senders_post(request, campaign)
    context = {"numbers": steps.sender_rows(campaign)}
    return _render(request, campaign, "senders", context)


def _senders_post(request, campaign: Campaign):
    form = SendersForm(request.POST, numbers=steps.sender_rows(campaign))
    if not form.is_valid():
        context = {"numbers": form.numbers, "error": form.error_text()}
        return _render(request, campaign, "senders", context, status=_refused(request))
    chosen = form.senders()
    move, copy = request.POST.get("move", ""), request.POST.get("copy", "")
    if move:
        chosen = steps.apply_move(chosen, move)
    if copy:
        chosen = steps.apply_copy(chosen, copy, form.numbers)
    try:
        setup.campaign_set_senders(campaign=campaign, senders=chosen)
    except setup.SetupError as exc:
        messages.error(request, str(exc))
        return redirect(_step_url(campaign, "senders"))
    if move or copy:
        return redirect(_step_url(campaign, "senders"))
    return redirect(_step_url(campaign, "mapping"))


def _mapping_step(request, campaign: Campaign):
    errors = {}
    if request.method == "POST":
        mapping = steps.mapping_from_post(request.POST)
        try:
            setup.campaign_set_mapping(campaign=campaign, mapping=mapping)
        except setup.SetupError as exc:
            errors = exc.errors
            messages.error(request, str(exc))
            campaign.variable_mapping = mapping
        else:
            return redirect(_step_url(campaign, "review"))
    context = {"templates": steps.mapping_rows(campaign, errors)}
    return _render(
        request, campaign, "mapping", context, status=_refused(request) if errors else 200
    )


def _review_step(request, campaign: Campaign):
    error, guard_form = "", GuardForm(request.POST or None)
    if request.method == "POST":
        checking = request.POST.get("action") == "check"
        try:
            when = None if checking else _schedule_from_post(request.POST)
            _guard_from_post(campaign, guard_form, starts_at=when)
            if checking:
                return redirect(_step_url(campaign, "review"))
            _track_clicks_from_post(campaign, request.POST)
            campaign_launch(campaign=campaign, user=request.user, scheduled_at=when)
            _audit_launch(request, campaign, when)
        except (CampaignStateError, ValueError) as exc:
            error = str(exc)
            guard_form.guard_errors = getattr(exc, "errors", {})
        else:
            messages.success(request, "Scheduled." if when else "Launched: sending has started.")
            return redirect("campaign-detail", pk=campaign.pk)
    review = setup.campaign_review(campaign=campaign)
    context = {
        "review": review,
        "guard_form": guard_form,
        "error": error,
        "default_tz": settings.TIME_ZONE,
        "skips": _skip_rows((campaign.import_report or {}).get("skipped", {})),
        "tracking": tracking_offer(
            campaign=campaign,
            templates=[template for template, _ in review["missing_by_template"]],
            rows=[sample["contact"].variables for sample in review["samples"]],
        ),
        "public_base_url": settings.PUBLIC_BASE_URL,
        **ab_review(
            campaign=campaign,
            templates=[template for template, _ in review["missing_by_template"]],
            pending=review["pending"],
        ),
    }
    return _render(request, campaign, "review", context, status=_refused(request) if error else 200)


def _guard_from_post(campaign: Campaign, form: GuardForm, *, starts_at) -> None:
    """Saves the deadline and quiet hours typed on the review step (SetupError if refused)."""
    if not form.is_valid():
        errors = {name: " ".join(messages) for name, messages in form.errors.items()}
        raise setup.SetupError(form.error_text(), errors=errors)
    campaign_set_guard(campaign=campaign, starts_at=starts_at, **form.settings())


def _track_clicks_from_post(campaign: Campaign, data) -> None:
    if tracking_offer(campaign=campaign)["possible"]:
        campaign_track_clicks(campaign=campaign, on=data.get("track_clicks") == "on")


def _audit_launch(request, campaign: Campaign, when):
    if when is None:
        audit_record(user=request.user, action="campaign.launch", obj=campaign, via="page")
        return
    changes = {"scheduled_at": when.isoformat()}
    audit_record(
        user=request.user, action="campaign.schedule", obj=campaign, changes=changes, via="page"
    )


def _skip_rows(counts: dict) -> list[tuple[str, str, int]]:
    """(reason, explanation, count) in a stable order (jsonb does not keep key order)."""
    return [(reason, text, counts.get(reason, 0)) for reason, text in REASON_TEXT.items()]


def _schedule_from_post(data) -> object:
    if data.get("when") != "later":
        return None
    moment = parse_datetime((data.get("scheduled_at") or "").strip())
    if moment is None:
        raise ValueError("Pick the date and time to start sending.")
    try:
        zone = ZoneInfo(data.get("tz") or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("Unknown time zone.") from exc
    return make_aware(moment.replace(tzinfo=None), zone)


_STEPS = {
    "upload": _upload_step,
    "columns": _columns_step,
    "senders": _senders_step,
    "mapping": _mapping_step,
    "review": _review_step,
}


@require_POST
@requires("campaign.change")
def campaign_duplicate(request, pk: int):
    source = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    copy = setup.campaign_duplicate(campaign=source, user=request.user)
    changes = {"source_id": source.pk}
    audit_record(
        user=request.user, action="campaign.duplicate", obj=copy, changes=changes, via="page"
    )
    messages.success(request, f"“{copy.name}” is a new draft with the same setup.")
    return redirect(_step_url(copy, "upload"))


@require_POST
@requires("campaign.change")
def campaign_delete(request, pk: int):
    campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    try:
        setup.campaign_delete(campaign=campaign)
    except setup.SetupError as exc:
        messages.error(request, str(exc))
        return redirect("campaign-detail", pk=pk)
    audit_record(user=request.user, action="campaign.delete", obj=campaign, obj_id=pk, via="page")
    messages.success(request, f"Deleted “{campaign.name}” and its uploaded list.")
    return redirect("campaign-list")


@require_GET
def campaign_skipped_csv(request, pk: int):
    campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    response = StreamingHttpResponse(
        skipped_rows_csv(campaign=campaign), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-skipped.csv"'
    return response

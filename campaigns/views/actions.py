"""Lifecycle buttons of the campaign page: POST only, one service call, back to the page.

A plain form post redirects to the campaign page with a message; an htmx post gets HX-Redirect
to the same place, so the page (and its controls) reloads in the state the action left it in.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from campaigns.models import Campaign
from campaigns.services import lifecycle
from campaigns.services.lifecycle import CampaignStateError
from campaigns.views.action_forms import LaunchForm, PauseForm, RetargetForm, form_error_text
from titanflow.access import requires
from titanflow.audit import audit_record


def _back(request, campaign_id: int):
    url = reverse("campaign-detail", kwargs={"pk": campaign_id})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _campaign(request, pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)


def _act(request, pk: int, action, success: str, audit: str, changes: dict | None = None):
    campaign = _campaign(request, pk)
    try:
        action(campaign)
    except CampaignStateError as exc:
        messages.error(request, str(exc))
    else:
        audit_record(user=request.user, action=audit, obj=campaign, changes=changes, via="page")
        messages.success(request, success.format(campaign=campaign))
    return _back(request, pk)


def _refuse(request, pk: int, form):
    messages.error(request, form_error_text(form))
    return _back(request, pk)


@require_POST
@requires("campaign.change")
def campaign_launch(request, pk: int):
    form = LaunchForm(request.POST)
    if not form.is_valid():
        return _refuse(request, pk, form)
    when = form.cleaned_data["scheduled_at"]

    def launch(campaign):
        lifecycle.campaign_launch(campaign=campaign, user=request.user, scheduled_at=when)

    if when:
        changes = {"scheduled_at": when.isoformat()}
        return _act(request, pk, launch, "Scheduled.", "campaign.schedule", changes)
    return _act(request, pk, launch, "Launched: sending has started.", "campaign.launch")


@require_POST
@requires("campaign.change")
def campaign_pause(request, pk: int):
    form = PauseForm(request.POST)
    if not form.is_valid():
        return _refuse(request, pk, form)
    reason = form.cleaned_data["reason"] or f"Paused by {request.user}."
    return _act(
        request,
        pk,
        lambda c: lifecycle.campaign_pause(campaign=c, reason=reason, user=request.user),
        "Paused: no more messages go out until you resume.",
        "campaign.pause",
        {"reason": reason},
    )


@require_POST
@requires("campaign.change")
def campaign_resume(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: lifecycle.campaign_resume(campaign=c, user=request.user),
        "Resumed: sending continues.",
        "campaign.resume",
    )


@require_POST
@requires("campaign.change")
def campaign_cancel(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: lifecycle.campaign_cancel(campaign=c, user=request.user),
        "Cancelled: contacts not yet sent will not be sent.",
        "campaign.cancel",
    )


@require_POST
@requires("campaign.change")
def campaign_retry_failed(request, pk: int):
    campaign = _campaign(request, pk)
    try:
        result = lifecycle.campaign_retry_failed(campaign=campaign, user=request.user)
    except CampaignStateError as exc:
        messages.error(request, str(exc))
    else:
        changes = {"requeued": result.queued}
        audit_record(
            user=request.user, action="campaign.retry", obj=campaign, changes=changes, via="page"
        )
        messages.success(request, _retry_sentence(result))
    return _back(request, pk)


def _retry_sentence(result) -> str:
    sentence = f"{result.queued} failed contacts are queued again."
    if result.left:
        why = "; ".join(
            f"{n} because {reason[0].lower()}{reason[1:].rstrip('.')}"
            for reason, n in sorted(result.left.items(), key=lambda item: -item[1])
        )
        sentence += f" {sum(result.left.values())} stay failed: {why}."
    return sentence


@require_POST
@requires("campaign.change")
def campaign_retarget(request, pk: int):
    campaign = _campaign(request, pk)
    form = RetargetForm(request.POST)
    if not form.is_valid():
        return _refuse(request, pk, form)
    try:
        target = lifecycle.campaign_retarget(
            campaign=campaign,
            audience=form.cleaned_data["audience"],
            user=request.user,
            name=form.cleaned_data["name"],
        )
    except CampaignStateError as exc:
        messages.error(request, str(exc))
        return _back(request, pk)
    changes = {"source_id": campaign.pk, "audience": request.POST.get("audience", "")}
    audit_record(
        user=request.user, action="campaign.retarget", obj=target, changes=changes, via="page"
    )
    messages.success(
        request, f"Follow-up campaign created with {target.total_count} contacts; review it."
    )
    return _back(request, target.pk)

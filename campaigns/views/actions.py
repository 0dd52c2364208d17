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


def _back(request, campaign_id: int):
    url = reverse("campaign-detail", kwargs={"pk": campaign_id})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _act(request, pk: int, action, success: str):
    campaign = get_object_or_404(Campaign, pk=pk)
    try:
        action(campaign)
    except CampaignStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success.format(campaign=campaign))
    return _back(request, pk)


def _refuse(request, pk: int, form):
    messages.error(request, form_error_text(form))
    return _back(request, pk)


@require_POST
def campaign_launch(request, pk: int):
    form = LaunchForm(request.POST)
    if not form.is_valid():
        return _refuse(request, pk, form)
    when = form.cleaned_data["scheduled_at"]

    def launch(campaign):
        lifecycle.campaign_launch(campaign=campaign, user=request.user, scheduled_at=when)

    done = "Scheduled." if when else "Launched: sending has started."
    return _act(request, pk, launch, done)


@require_POST
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
    )


@require_POST
def campaign_resume(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: lifecycle.campaign_resume(campaign=c, user=request.user),
        "Resumed: sending continues.",
    )


@require_POST
def campaign_cancel(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: lifecycle.campaign_cancel(campaign=c, user=request.user),
        "Cancelled: contacts not yet sent will not be sent.",
    )


@require_POST
def campaign_retry_failed(request, pk: int):
    campaign = get_object_or_404(Campaign, pk=pk)
    try:
        count = lifecycle.campaign_retry_failed(campaign=campaign, user=request.user)
    except CampaignStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{count} failed contacts are queued again.")
    return _back(request, pk)


@require_POST
def campaign_retarget(request, pk: int):
    campaign = get_object_or_404(Campaign, pk=pk)
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
    messages.success(
        request, f"Follow-up campaign created with {target.total_count} contacts; review it."
    )
    return _back(request, target.pk)

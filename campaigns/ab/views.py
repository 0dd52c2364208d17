"""The A/B test's two buttons: save its set-up (review step) and pick the winner (campaign
page). POST only, one service call, back to the page with a message."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from campaigns.ab.forms import AbTestForm
from campaigns.ab.models import AbArm, AbTest
from campaigns.ab.services import AbTestError, ab_test_configure, ab_test_remove, ab_winner_choose
from campaigns.models import Campaign
from campaigns.services.setup import chosen_templates
from titanflow.access import requires
from titanflow.audit import audit_record


@require_POST
@requires("campaign.change")
def campaign_ab_setup(request, pk: int):
    campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    form = AbTestForm(request.POST, templates=chosen_templates(campaign=campaign))
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("campaign-wizard", pk=pk, step="review")
    data = form.cleaned_data
    try:
        if not data["enabled"]:
            ab_test_remove(campaign=campaign)
        else:
            ab_test_configure(
                campaign=campaign,
                arms=data["arms"],
                test_share=data["test_share"],
                metric=data["metric"],
                auto_pick_hours=data["auto_pick_hours"],
                min_sample=data["min_sample"],
            )
    except AbTestError as exc:
        messages.error(request, str(exc))
    else:
        audit_record(user=request.user, action="campaign.ab_test", obj=campaign, via="page")
        messages.success(request, "A/B test saved." if data["enabled"] else "No A/B test.")
    return redirect("campaign-wizard", pk=pk, step="review")


@require_POST
@requires("campaign.change")
def campaign_ab_winner(request, pk: int):
    campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
    test = get_object_or_404(AbTest, campaign=campaign)
    arm = get_object_or_404(
        AbArm.objects.select_related("template"), test=test, pk=_int(request.POST.get("arm"))
    )
    if campaign.status not in Campaign.LIVE:
        messages.error(
            request,
            "The campaign is no longer sending: there is nobody left to send the winner to.",
        )
    elif ab_winner_choose(test=test, arm=arm, user=request.user):
        changes = {"winner": arm.label}
        audit_record(
            user=request.user,
            action="campaign.ab_winner",
            obj=campaign,
            changes=changes,
            via="page",
        )
        messages.success(request, f"Arm {arm.label} won: the rest of the audience gets it now.")
    else:
        messages.error(request, "The winner was already chosen.")
    return redirect("campaign-detail", pk=pk)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _errors(form) -> str:
    return " ".join(f"{error}" for errors in form.errors.values() for error in errors)

"""Lifecycle API: launch or schedule, pause, resume, cancel, retry failed, retarget, stats.

Every action is a POST on the campaign; a transition that cannot happen now answers 409 with the
same sentence the campaign page shows.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api.reporting import CostSerializer
from campaigns.clicks.stats import click_funnel
from campaigns.models import Campaign
from campaigns.services import lifecycle
from campaigns.services.guard_review import (
    campaign_guard_review,
    campaign_set_guard,
    guard_settings_errors,
)
from campaigns.services.lifecycle import AUDIENCES, CampaignStateError
from campaigns.services.setup import SetupError
from titanflow.audit import audit_record

GUARD_FIELDS = ("deadline", "quiet_start", "quiet_end", "quiet_zone")


class CampaignStateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "pause_reason",
            "scheduled_at",
            "launched_at",
            "completed_at",
            "total_count",
        ]


class LaunchSerializer(serializers.Serializer):
    scheduled_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text=(
            "Start at this time instead of now: ISO 8601, with its offset (a time without one "
            "is read in the server's TIME_ZONE). A time already past is refused with 409."
        ),
    )
    deadline = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Send nothing after this (ISO 8601); contacts not sent by then end `expired`.",
    )
    quiet_start = serializers.TimeField(
        required=False,
        allow_null=True,
        help_text="Start of quiet hours (HH:MM) in each recipient's local time; with quiet_end.",
    )
    quiet_end = serializers.TimeField(
        required=False, allow_null=True, help_text="End of quiet hours (HH:MM); may wrap midnight."
    )
    quiet_zone = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="A time zone (e.g. Asia/Dubai) for every recipient instead of their number's.",
    )

    def validate(self, data):
        errors = guard_settings_errors(
            deadline=data.get("deadline"),
            quiet_start=data.get("quiet_start"),
            quiet_end=data.get("quiet_end"),
            quiet_zone=data.get("quiet_zone", ""),
            starts_at=data.get("scheduled_at"),
        )
        if errors:
            raise serializers.ValidationError(errors)
        return data


class BudgetSerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        allow_null=True, help_text="The portfolio's unique recipients per 24 h; null: none."
    )
    fit_now = serializers.IntegerField(help_text="Recipients the limit lets go now.")
    recipients = serializers.IntegerField()
    rest_from = serializers.DateTimeField(
        allow_null=True, help_text="When the window frees room for the rest; null if all fit."
    )
    text = serializers.CharField()


class QuietHoursSerializer(serializers.Serializer):
    start = serializers.TimeField()
    end = serializers.TimeField()
    zone = serializers.CharField(help_text="Empty: each recipient's own zone.")
    inside_now = serializers.IntegerField(help_text="Recipients inside their quiet hours now.")
    text = serializers.CharField()


class DeadlineSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    may_expire = serializers.BooleanField(
        help_text="Whether sending at the estimated rate would take longer than the deadline."
    )
    text = serializers.CharField()


class GuardReviewSerializer(serializers.Serializer):
    recipients = serializers.IntegerField(help_text="Contacts that will be sent to.")
    budget = BudgetSerializer()
    cost = CostSerializer(help_text="The estimate: recipients × the rate for their market.")
    quiet_hours = QuietHoursSerializer(allow_null=True)
    deadline = DeadlineSerializer(allow_null=True)
    us_skipped = serializers.IntegerField(
        help_text="US (+1) numbers skipped because the campaign sends only marketing templates."
    )
    us_skipped_text = serializers.CharField()


class LaunchAnswerSerializer(CampaignStateSerializer):
    guard = serializers.SerializerMethodField()

    class Meta(CampaignStateSerializer.Meta):
        fields = [*CampaignStateSerializer.Meta.fields, "guard"]

    @extend_schema_field(GuardReviewSerializer)
    def get_guard(self, campaign) -> dict:
        review = self.context["guard"]
        return GuardReviewSerializer({**review, "cost": review["cost"].as_dict()}).data


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class RetargetSerializer(serializers.Serializer):
    audience = serializers.ChoiceField(choices=AUDIENCES)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class CampaignAction(APIView):
    # POST runs `act(campaign, data, user)`; a CampaignStateError becomes 409. Each success is
    # audited as `audit_action`. Subclasses' docstrings are the integrators' descriptions.

    input_serializer = None
    http_method_names = ["post", "options"]
    access_action = "campaign.change"
    audit_action = ""

    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        data = {}
        if self.input_serializer is not None:
            serializer = self.input_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        try:
            response = self.act(campaign, data, request.user)
        except CampaignStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        self.audit(request.user, campaign, data, response)
        return response

    def act(self, campaign, data, user) -> Response:
        raise NotImplementedError

    def audit(self, user, campaign, data, response) -> None:
        changes = {key: str(value) for key, value in data.items() if value not in ("", None)}
        audit_record(user=user, action=self.audit_action, obj=campaign, changes=changes, via="api")

    @staticmethod
    def state(campaign) -> Response:
        return Response(CampaignStateSerializer(campaign).data)


@extend_schema(request=LaunchSerializer, responses=LaunchAnswerSerializer)
class LaunchView(CampaignAction):
    """Start sending now, or at `scheduled_at`, with an optional deadline and quiet hours.
    Answers 409 when the campaign is not ready (no list, no number with an approved template,
    variables not mapped) or the time has passed, 400 for a deadline or quiet hours the guard
    cannot keep. The answer says what the guard will do: how many recipients the portfolio's
    limit lets go now and when the rest can, the cost estimate, quiet hours, the deadline and
    the US numbers skipped."""

    input_serializer = LaunchSerializer

    def audit(self, user, campaign, data, response) -> None:
        self.audit_action = "campaign.schedule" if data.get("scheduled_at") else "campaign.launch"
        super().audit(user, campaign, data, response)

    def act(self, campaign, data, user):
        when = data.get("scheduled_at")
        guard = {key: data[key] for key in GUARD_FIELDS if key in data}
        if guard:
            try:
                campaign_set_guard(campaign=campaign, starts_at=when, **guard)
            except SetupError as exc:
                raise CampaignStateError(str(exc)) from exc
        review = campaign_guard_review(campaign=campaign)
        launched = lifecycle.campaign_launch(campaign=campaign, user=user, scheduled_at=when)
        return Response(LaunchAnswerSerializer(launched, context={"guard": review}).data)


@extend_schema(request=PauseSerializer, responses=CampaignStateSerializer)
class PauseView(CampaignAction):
    """Stop sending within a few seconds; the reason shows on the campaign page and timeline."""

    input_serializer = PauseSerializer
    audit_action = "campaign.pause"

    def act(self, campaign, data, user):
        reason = data.get("reason") or f"Paused by {user} through the API."
        return self.state(lifecycle.campaign_pause(campaign=campaign, reason=reason, user=user))


@extend_schema(request=None, responses=CampaignStateSerializer)
class ResumeView(CampaignAction):
    """Send on from where the campaign stopped, with every number tried again; 409 when no
    number has an approved template left."""

    audit_action = "campaign.resume"

    def act(self, campaign, data, user):
        return self.state(lifecycle.campaign_resume(campaign=campaign, user=user))


@extend_schema(request=None, responses=CampaignStateSerializer)
class CancelView(CampaignAction):
    """End the campaign for good: contacts not yet sent will not be sent."""

    audit_action = "campaign.cancel"

    def act(self, campaign, data, user):
        return self.state(lifecycle.campaign_cancel(campaign=campaign, user=user))


@extend_schema(
    request=None,
    responses=inline_serializer(
        "RetryFailed",
        {
            "requeued": serializers.IntegerField(help_text="Failed contacts queued again."),
            "left": serializers.DictField(
                child=serializers.IntegerField(),
                help_text="Why the others stay failed, with how many of each.",
            ),
        },
    ),
)
class RetryFailedView(CampaignAction):
    """Queue again the failed contacts that can succeed now (network failures, Meta's
    temporary errors); `left` says how many stay failed and why (opted out, a missing value,
    Meta's per-user limit, a send Meta may already have delivered)."""

    audit_action = "campaign.retry"

    def act(self, campaign, data, user):
        result = lifecycle.campaign_retry_failed(campaign=campaign, user=user)
        return Response({"requeued": result.queued, "left": result.left})


@extend_schema(request=RetargetSerializer, responses={201: CampaignStateSerializer})
class RetargetView(CampaignAction):
    """Create a follow-up campaign, ready to review, for part of this one's audience: `failed`,
    `not_delivered`, `not_read` or `replied`; same numbers, templates and variables."""

    input_serializer = RetargetSerializer

    def audit(self, user, campaign, data, response) -> None:
        target = Campaign.objects.get(pk=response.data["id"])
        changes = {"source_id": campaign.pk, "audience": data["audience"]}
        audit_record(user=user, action="campaign.retarget", obj=target, changes=changes, via="api")

    def act(self, campaign, data, user):
        target = lifecycle.campaign_retarget(
            campaign=campaign, audience=data["audience"], user=user, name=data.get("name", "")
        )
        return Response(CampaignStateSerializer(target).data, status=status.HTTP_201_CREATED)


class _FunnelRow(serializers.Serializer):
    name = serializers.CharField(help_text="The template's name, or the number")
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    clicked = serializers.IntegerField()
    replied = serializers.IntegerField()


class ClicksView(APIView):
    """The funnel with clicks (sent, delivered, read, clicked, replied) per template and number."""

    http_method_names = ["get", "options"]

    @extend_schema(
        summary="A campaign's funnel with link clicks",
        description="Recipients at each stage (sent, delivered, read, clicked a tracked link, "
        "replied), per template and per sending number. A recipient counts once however "
        "often they click.",
        responses=inline_serializer(
            "CampaignClicks",
            {
                "track_clicks": serializers.BooleanField(),
                "clicked": serializers.IntegerField(),
                "by_template": _FunnelRow(many=True),
                "by_number": _FunnelRow(many=True),
            },
        ),
    )
    def get(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        return Response({"track_clicks": campaign.track_clicks, **click_funnel(campaign=campaign)})

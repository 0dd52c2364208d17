"""A/B tests in the API: the set-up, nested in a campaign (create, detail, update), and the
report `GET /api/campaigns/{id}/ab/`."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.ab.models import AbTest
from campaigns.ab.report import ab_report
from campaigns.ab.services import (
    AbTestError,
    ArmSpec,
    ab_test_configure,
    ab_test_remove,
    ab_winner_choose,
)
from campaigns.api.lifecycle import CampaignAction
from campaigns.models import Campaign
from campaigns.services.lifecycle import CampaignStateError


class AbArmSerializer(serializers.Serializer):
    label = serializers.CharField(read_only=True, help_text="A, B, … in the order given")
    template = serializers.IntegerField(
        source="template_id", min_value=1, max_value=2**63 - 1, help_text="A template id"
    )
    values = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        default=dict,
        help_text='Fixed values by slot key, over the mapping: {"body.2": "20%"}',
    )


MAX_SAMPLE = 2**31 - 1  # the column's range


class AbTestSerializer(serializers.Serializer):
    test_share = serializers.IntegerField(min_value=1, max_value=100, default=20)
    metric = serializers.ChoiceField(choices=AbTest.Metric.choices, default=AbTest.Metric.READ)
    auto_pick_hours = serializers.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="Pick the winner this long after the test share was sent; null: by hand.",
    )
    min_sample = serializers.IntegerField(min_value=1, max_value=MAX_SAMPLE, default=100)
    arms = AbArmSerializer(many=True, min_length=AbTest.MIN_ARMS, max_length=AbTest.MAX_ARMS)
    winner = serializers.SerializerMethodField()
    test_done_at = serializers.DateTimeField(read_only=True, allow_null=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_winner(self, test) -> str | None:
        """The winning arm's label, once chosen."""
        return test.winner.label if test.winner_id else None

    def to_representation(self, test):
        data = super().to_representation(test)
        arms = sorted(test.arms.all(), key=lambda arm: arm.position)  # prefetched by the list
        data["arms"] = AbArmSerializer(arms, many=True).data
        return data


def ab_test_save(*, campaign: Campaign, data: dict | None) -> None:
    """Applies the nested `ab_test` of a campaign's create or update (null removes it)."""
    try:
        if data is None:
            ab_test_remove(campaign=campaign)
            return
        if "arms" not in data:
            # A PATCH makes every nested field optional; the arms are what a test is.
            raise serializers.ValidationError({"ab_test": {"arms": ["This field is required."]}})
        arms = [ArmSpec(arm["template_id"], arm.get("values") or {}) for arm in data["arms"]]
        # A PATCH leaves out the defaults: the test is always given whole, so apply them here.
        ab_test_configure(
            campaign=campaign,
            arms=arms,
            test_share=data.get("test_share", 20),
            metric=data.get("metric", AbTest.Metric.READ),
            auto_pick_hours=data.get("auto_pick_hours"),
            min_sample=data.get("min_sample", 100),
        )
    except AbTestError as exc:
        raise serializers.ValidationError({"ab_test": [str(exc)]}) from exc


class _ArmFigures(serializers.Serializer):
    arm_id = serializers.IntegerField()
    label = serializers.CharField()
    template = serializers.CharField(help_text="The template's name")
    template_language = serializers.CharField()
    values = serializers.DictField(child=serializers.CharField())
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    clicked = serializers.IntegerField(help_text="Recipients who opened a tracked link, once")
    replied = serializers.IntegerField()
    read_rate = serializers.FloatField()
    click_rate = serializers.FloatField()
    reply_rate = serializers.FloatField()
    best = serializers.BooleanField(help_text="The best arm by the test's metric")
    p_value = serializers.FloatField(
        allow_null=True, help_text="Two-proportion z-test against the best arm; null for it"
    )
    significant = serializers.BooleanField(help_text="p below the significance level")
    winner = serializers.BooleanField()


class _Rest(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="Contacts outside the test share still waiting")
    sent = serializers.IntegerField(help_text="Contacts outside the test share sent the winner")


class AbReportSerializer(serializers.Serializer):
    test_share = serializers.IntegerField()
    metric = serializers.CharField()
    metric_label = serializers.CharField()
    auto_pick_hours = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True)
    min_sample = serializers.IntegerField()
    significance = serializers.FloatField()
    test_done_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True, help_text="When the automatic pick is due")
    winner = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True, help_text="Null when picked automatically")
    note = serializers.CharField()
    arms = _ArmFigures(many=True)
    rest = _Rest()


class AbReportView(APIView):
    """A campaign's A/B test: each arm's funnel and rates, significance and the winner."""

    http_method_names = ["get", "options"]

    @extend_schema(
        summary="A campaign's A/B test results",
        description="Per arm (test share only): recipients sent, delivered, read, clicked and "
        "replied, their rates, and a two-proportion z-test of each arm against the best by the "
        "test's metric. 404 when the campaign has no A/B test.",
        responses=AbReportSerializer,
    )
    def get(self, request, pk: int):
        campaigns = Campaign.objects.visible_to(request.user).select_related("ab_test")
        report = ab_report(campaign=get_object_or_404(campaigns, pk=pk))
        if report is None:
            raise NotFound("This campaign has no A/B test.")
        return Response(AbReportSerializer(report).data)


class WinnerSerializer(serializers.Serializer):
    arm = serializers.RegexField(r"^[A-H]$", help_text="The winning arm's label: A, B, …")


class AbWinnerView(CampaignAction):
    """Pick the A/B test's winner now: the contacts outside the test share get its template and
    values. 409 when the test was decided already or the campaign no longer sends."""

    input_serializer = WinnerSerializer
    audit_action = "campaign.ab_winner"

    @extend_schema(request=WinnerSerializer, responses=AbReportSerializer)
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, campaign, data, user):
        test = AbTest.objects.filter(campaign=campaign).first()
        if test is None:
            raise NotFound("This campaign has no A/B test.")
        arm = test.arms.select_related("template").filter(position="ABCDEFGH".index(data["arm"]))
        if not arm.exists():
            raise NotFound(f"This test has no arm {data['arm']}.")
        if campaign.status not in Campaign.LIVE:
            raise CampaignStateError("The campaign no longer sends: nobody is left to get it.")
        if not ab_winner_choose(test=test, arm=arm.get(), user=user):
            raise CampaignStateError("The winner was already chosen.")
        return Response(AbReportSerializer(ab_report(campaign=campaign)).data)

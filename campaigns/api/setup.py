"""The integrators' API for building a campaign: everything the wizard does, under token auth.

Launching and scheduling belong to the lifecycle endpoints (`POST /api/campaigns/{id}/launch/`);
each campaign links to them."""

import django_filters
from django.conf import settings
from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse

from campaigns.ab.models import AbArm
from campaigns.api.ab import AbTestSerializer, ab_test_save
from campaigns.importing import ImportFileError, import_enqueue, import_start
from campaigns.importing import limits as refusal
from campaigns.importing.export import skipped_rows_csv
from campaigns.models import Campaign
from campaigns.services import setup
from titanflow.audit import audit_record

_STATUS_HELP = "One of: " + ", ".join(Campaign.Status.values)


class CampaignSerializer(serializers.ModelSerializer):
    # A plain string (values in the help text): an enum here collides with the templates' own
    # "status" enum in the schema.
    status = serializers.CharField(read_only=True, help_text=_STATUS_HELP)
    links = serializers.SerializerMethodField()
    ab_test = AbTestSerializer(
        required=False, allow_null=True, help_text="An A/B test of 2-8 arms; null: none."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "pause_reason",
            "dedup_days",
            "max_mps",
            "scheduled_at",
            "source_name",
            "columns",
            "phone_column",
            "name_column",
            "phone_region",
            "total_count",
            "skipped_count",
            "sent_count",
            "delivered_count",
            "read_count",
            "replied_count",
            "failed_count",
            "created_at",
            "launched_at",
            "ab_test",
            "links",
        ]
        read_only_fields = [
            f for f in fields if f not in ("name", "dedup_days", "max_mps", "ab_test")
        ]
        extra_kwargs = {"dedup_days": {"min_value": 0, "max_value": setup.DEDUP_DAYS_MAX}}

    def get_links(self, campaign) -> dict[str, str]:
        request = self.context.get("request")
        kwargs = {"pk": campaign.pk}
        return {
            name: reverse(route, kwargs=kwargs, request=request)
            for name, route in (
                ("contacts", "api-campaign-contacts"),
                ("reimport", "api-campaign-reimport"),
                ("import_report", "api-campaign-import-report"),
                ("skipped_csv", "api-campaign-skipped-csv"),
                ("senders", "api-campaign-senders"),
                ("mapping", "api-campaign-mapping"),
                ("preview", "api-campaign-preview"),
                ("launch", "api-campaign-launch"),
                ("stats", "api-campaign-stats"),
                ("timeline", "api-campaign-timeline"),
                ("recipients", "api-campaign-recipients"),
                ("results_csv", "api-campaign-results-csv"),
                ("ab", "api-campaign-ab"),
            )
        }

    def create(self, validated_data):
        ab = validated_data.pop("ab_test", None)
        try:
            campaign = setup.campaign_create(owner=self.context["request"].user, **validated_data)
        except setup.SetupError as exc:
            raise serializers.ValidationError({"name": [str(exc)]}) from exc
        if ab is not None:
            ab_test_save(campaign=campaign, data=ab)
        return campaign


_REGION_HELP = (
    "Where numbers without a country code are read (ISO 3166 code such as AE or GB); "
    "empty keeps the campaign's, by default DEFAULT_PHONE_REGION."
)


class ColumnsSerializer(serializers.Serializer):
    phone_column = serializers.CharField()
    name_column = serializers.CharField(required=False, default="", allow_blank=True)
    phone_region = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=2, help_text=_REGION_HELP
    )


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    phone_column = serializers.CharField(required=False, default="", allow_blank=True)
    name_column = serializers.CharField(required=False, default="", allow_blank=True)
    phone_region = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=2, help_text=_REGION_HELP
    )

    def validate_file(self, upload):
        # The upload handler stopped keeping bytes at the limit; `size` still counts them all.
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise serializers.ValidationError(refusal.too_large(settings.IMPORT_MAX_BYTES))
        return upload


class SkippedByReasonSerializer(serializers.Serializer):
    invalid_phone = serializers.IntegerField(help_text="Not a valid phone number.")
    duplicate_in_file = serializers.IntegerField(
        help_text="The number appears earlier in the file."
    )
    opted_out = serializers.IntegerField(help_text="The number opted out of marketing messages.")
    recently_messaged = serializers.IntegerField(
        help_text="Messaged by a campaign within the dedup window."
    )
    missing_variable = serializers.IntegerField(
        help_text="A value no chosen template can do without is empty."
    )


class FileDetailsSerializer(serializers.Serializer):
    format = serializers.CharField(help_text="`csv`, `xlsx`, ...: what the file turned out to be.")
    encoding = serializers.CharField(required=False, help_text="Text files: the encoding read.")
    delimiter = serializers.CharField(required=False, help_text="Text files: the separator.")
    sheet = serializers.CharField(required=False, help_text="Workbooks: the sheet read.")


class ImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Data rows read from the file.")
    valid = serializers.IntegerField(help_text="Rows that became contacts to send to.")
    skipped = SkippedByReasonSerializer(help_text="Rows skipped, by reason.")
    file = FileDetailsSerializer()
    phone_column = serializers.CharField()
    name_column = serializers.CharField()
    finished_at = serializers.DateTimeField()


class ImportReportSerializer(serializers.Serializer):
    status = serializers.CharField(help_text=_STATUS_HELP)
    rows_done = serializers.IntegerField(source="import_rows_done")
    rows_estimate = serializers.IntegerField(source="import_rows_estimate")
    error = serializers.CharField(source="import_error")
    report = serializers.SerializerMethodField(
        help_text="What the import made of the file, once it has finished; null until then."
    )
    total_count = serializers.IntegerField()
    skipped_count = serializers.IntegerField()

    @extend_schema_field(ImportResultSerializer(allow_null=True))
    def get_report(self, campaign) -> dict | None:
        report = campaign.import_report
        return ImportResultSerializer(report).data if report.get("finished_at") else None


class SenderInSerializer(serializers.Serializer):
    phone_id = serializers.IntegerField()
    template_ids = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, help_text="Tried in this order."
    )
    mps = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class SendersSerializer(serializers.Serializer):
    senders = SenderInSerializer(many=True)


class SenderOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The sender's id within this campaign.")
    phone_id = serializers.IntegerField()
    phone_number_id = serializers.CharField(source="phone.phone_number_id")
    mps = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()
    template_ids = serializers.SerializerMethodField()

    def get_template_ids(self, sender) -> list[int]:
        return [slot.template_id for slot in sender.template_slots.all()]


class SendersOutSerializer(serializers.Serializer):
    senders = SenderOutSerializer(many=True)


class MappingSerializer(serializers.Serializer):
    mapping = serializers.DictField(
        child=serializers.DictField(child=serializers.DictField(child=serializers.CharField())),
        help_text='{"<template id>": {"<slot key>": {"column": "..."} | {"text": "..."}}}',
    )


class PreviewSerializer(serializers.Serializer):
    template_id = serializers.IntegerField(source="template.pk")
    template_name = serializers.CharField(source="template.name")
    phone_number_id = serializers.CharField(source="phone.phone_number_id")
    contact_id = serializers.IntegerField(source="contact.pk")
    to = serializers.CharField(source="contact.phone")
    payload = serializers.JSONField(allow_null=True, help_text="The exact request body.")
    rendered = serializers.JSONField()
    missing = serializers.ListField(child=serializers.CharField())


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


class CampaignFilter(django_filters.FilterSet):
    class Meta:
        model = Campaign
        fields = ["status"]


class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Campaigns you can see (a marketer sees their own): create a draft, then upload its
    contacts, choose its numbers and templates, map its variables and preview it."""

    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    queryset = (
        Campaign.objects.select_related("ab_test__winner")
        .prefetch_related(Prefetch("ab_test__arms", queryset=AbArm.objects.order_by("position")))
        .order_by("-created_at", "-id")
    )
    access_action = "campaign.change"
    lookup_value_converter = "int"

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)

    def perform_create(self, serializer):
        campaign = serializer.save()
        audit_record(user=self.request.user, action="campaign.create", obj=campaign, via="api")

    def perform_update(self, serializer):
        campaign = serializer.instance
        data = serializer.validated_data
        try:
            setup.campaign_update(
                campaign=campaign,
                name=data.get("name", campaign.name),
                dedup_days=data.get("dedup_days", campaign.dedup_days),
            )
        except (setup.SetupError, ImportFileError) as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc
        if "ab_test" in data:
            ab_test_save(campaign=campaign, data=data["ab_test"])
            campaign.refresh_from_db()  # the answer shows the test as saved, not as loaded

    def perform_destroy(self, instance):
        pk = instance.pk
        try:
            setup.campaign_delete(campaign=instance)
        except setup.SetupError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc
        audit_record(
            user=self.request.user, action="campaign.delete", obj=instance, obj_id=pk, via="api"
        )

    @extend_schema(request=UploadSerializer, responses={202: ImportReportSerializer})
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[MultiPartParser, FormParser],
        url_path="contacts",
        url_name="contacts",
    )
    def contacts(self, request, pk=None):
        """Upload the contact list (multipart `file`); the import runs in the background."""
        campaign = self.get_object()
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            import_start(
                campaign=campaign,
                uploaded_file=upload.validated_data["file"],
                phone_column=upload.validated_data["phone_column"],
                name_column=upload.validated_data["name_column"],
                phone_region=upload.validated_data["phone_region"],
            )
        except ImportFileError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from exc
        return Response(ImportReportSerializer(campaign).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ColumnsSerializer, responses={202: ImportReportSerializer})
    @action(detail=True, methods=["post"], url_path="reimport", url_name="reimport")
    def reimport(self, request, pk=None):
        """Import the stored list again with other columns, or retry a failed import."""
        campaign = self.get_object()
        body = ColumnsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            import_enqueue(campaign=campaign, **body.validated_data)
        except ImportFileError as exc:
            raise serializers.ValidationError({"phone_column": [str(exc)]}) from exc
        return Response(ImportReportSerializer(campaign).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=ImportReportSerializer)
    @action(detail=True, methods=["get"], url_path="import-report", url_name="import-report")
    def import_report(self, request, pk=None):
        """Import progress while importing; counts per skip reason once done."""
        return Response(ImportReportSerializer(self.get_object()).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(
        detail=True,
        methods=["get"],
        url_path="skipped.csv",
        url_name="skipped-csv",
        renderer_classes=[CSVRenderer, JSONRenderer],
    )
    def skipped_csv(self, request, pk=None):
        """The skipped rows with their reason and original cells."""
        campaign = self.get_object()
        response = StreamingHttpResponse(
            skipped_rows_csv(campaign=campaign), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-skipped.csv"'
        return response

    @extend_schema(methods=["GET"], responses=SendersOutSerializer, request=None)
    @extend_schema(methods=["PUT"], request=SendersSerializer, responses=SendersOutSerializer)
    @action(detail=True, methods=["get", "put"], url_path="senders", url_name="senders")
    def senders(self, request, pk=None):
        """The sending numbers, each with its ordered template list and optional rate."""
        campaign = self.get_object()
        if request.method == "PUT":
            body = SendersSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            try:
                setup.campaign_set_senders(
                    campaign=campaign, senders=body.validated_data["senders"]
                )
            except setup.SetupError as exc:
                raise serializers.ValidationError({"senders": [str(exc)]}) from exc
        senders = setup.senders_with_templates(campaign=campaign)
        return Response(SendersOutSerializer({"senders": senders}).data)

    @extend_schema(methods=["GET"], responses=MappingSerializer, request=None)
    @extend_schema(methods=["PUT"], request=MappingSerializer, responses=MappingSerializer)
    @action(detail=True, methods=["get", "put"], url_path="mapping", url_name="mapping")
    def mapping(self, request, pk=None):
        """Which column (or fixed text) fills each variable slot of each chosen template."""
        campaign = self.get_object()
        if request.method == "PUT":
            body = MappingSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            try:
                setup.campaign_set_mapping(
                    campaign=campaign, mapping=body.validated_data["mapping"]
                )
            except setup.SetupError as exc:
                raise serializers.ValidationError(
                    {"detail": str(exc), "mapping": exc.errors}
                ) from exc
            campaign.refresh_from_db()
        return Response({"mapping": campaign.variable_mapping})

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="Contacts per template (max 20)")],
        responses=PreviewSerializer(many=True),
    )
    @action(
        detail=True, methods=["get"], url_path="preview", url_name="preview", pagination_class=None
    )
    def preview(self, request, pk=None):
        """The first contacts' messages per template, exactly as they will be sent."""
        campaign = self.get_object()
        try:
            limit = min(max(int(request.query_params.get("limit", 3)), 1), 20)
        except ValueError:
            limit = 3
        samples = setup.campaign_preview(campaign=campaign, limit=limit)
        return Response(PreviewSerializer(samples, many=True).data)

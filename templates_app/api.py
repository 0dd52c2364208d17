"""The integrators' API for Meta assets: accounts (write-only secrets), numbers, templates, sync."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.validators import UniqueValidator

from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from templates_app.services.jobs import account_sync_enqueue
from templates_app.services.progress import SyncProgress
from templates_app.services.sync import AccountVerificationError, account_create
from templates_app.validators import graph_id
from titanflow.audit import audit_record


class AccountSerializer(serializers.ModelSerializer):
    # Secrets go in, never out: no response ever carries them.
    access_token = serializers.CharField(write_only=True, trim_whitespace=True)
    app_secret = serializers.CharField(write_only=True, required=False, default="")
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    # Validated before account_create calls Meta with it: it becomes a Graph API path.
    waba_id = serializers.CharField(
        max_length=32,
        validators=[
            graph_id,
            UniqueValidator(
                WhatsAppAccount.objects.all(), message="This WhatsApp account is already added."
            ),
        ],
    )

    class Meta:
        model = WhatsAppAccount
        fields = [
            "id",
            "waba_id",
            "name",
            "access_token",
            "app_secret",
            "health",
            "health_detail",
            "last_synced_at",
            "created_at",
        ]
        read_only_fields = ["health", "health_detail", "last_synced_at", "created_at"]

    def create(self, validated_data):
        try:
            account = account_create(**validated_data)
        except AccountVerificationError as exc:
            raise serializers.ValidationError({"access_token": [str(exc)]}) from exc
        account_sync_enqueue(account=account)
        return account


class AccountViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """List and add WhatsApp accounts; adding one checks its token with Meta first."""

    lookup_value_converter = "int"

    queryset = WhatsAppAccount.objects.order_by("name", "id")
    serializer_class = AccountSerializer
    filterset_fields = ["waba_id", "health"]
    access_actions = {"create": "account.manage", "sync": "assets.sync"}

    def perform_create(self, serializer):
        account = serializer.save()
        # The secrets in validated_data reach the log only as "changed" (see audit.redact).
        changes = serializer.validated_data
        audit_record(
            user=self.request.user, action="account.create", obj=account, changes=changes, via="api"
        )

    @extend_schema(
        request=None,
        responses={202: inline_serializer("SyncStarted", {"sync_id": serializers.CharField()})},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Queue a sync of the account's numbers and templates; poll `sync-status` for progress."""
        account = self.get_object()
        sync_id = account_sync_enqueue(account=account)
        audit_record(user=request.user, action="account.sync", obj=account, via="api")
        return Response({"sync_id": sync_id}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="sync-status")
    def sync_status(self, request, pk=None):
        """The latest sync's state ("queued", "running", "waiting", "done", "failed") and counts."""
        latest = SyncProgress.latest(account_id=self.get_object().pk)
        return Response(latest or {"state": "none"})


class PhoneNumberSerializer(serializers.ModelSerializer):
    waba_id = serializers.CharField(source="account.waba_id", read_only=True)

    class Meta:
        model = PhoneNumber
        fields = [
            "id",
            "account",
            "waba_id",
            "phone_number_id",
            "display_phone_number",
            "verified_name",
            "quality_rating",
            "status",
            "throughput_level",
            "messaging_limit",
            "max_mps",
            "max_mps_overridden",
            "last_synced_at",
        ]


class PhoneNumberViewSet(viewsets.ReadOnlyModelViewSet):
    """The sending numbers of every account: quality rating, status, throughput and the rate
    TitanFlow sends at. Use `id` as `phone_id` when choosing a campaign's senders."""

    lookup_value_converter = "int"
    queryset = PhoneNumber.objects.select_related("account").order_by("id")
    serializer_class = PhoneNumberSerializer
    filterset_fields = {
        "account": ["exact"],
        "account__waba_id": ["exact"],
        "quality_rating": ["exact"],
        "status": ["exact"],
        "throughput_level": ["exact"],
    }


class TemplateFilter(django_filters.FilterSet):
    sendable = django_filters.BooleanFilter(method="filter_sendable")
    waba_id = django_filters.CharFilter(field_name="account__waba_id")

    class Meta:
        model = MessageTemplate
        fields = ["account", "status", "category", "language", "name", "deleted_at_meta"]

    def filter_sendable(self, queryset, name, value):
        sendable = MessageTemplate.objects.sendable().values("pk")
        return queryset.filter(pk__in=sendable) if value else queryset.exclude(pk__in=sendable)


class TemplateSerializer(serializers.ModelSerializer):
    sendable = serializers.BooleanField(source="is_sendable", read_only=True)
    unavailable_reason = serializers.CharField(read_only=True)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "account",
            "meta_template_id",
            "name",
            "language",
            "category",
            "approved_category",
            "status",
            "status_reason",
            "quality_score",
            "parameter_format",
            "components",
            "slots",
            "deleted_at_meta",
            "sendable",
            "unavailable_reason",
            "last_synced_at",
        ]


class TemplateViewSet(viewsets.ReadOnlyModelViewSet):
    """Message templates as last synced or reported by Meta, with their variable slots; only
    approved ones can be sent. Use `id` in a sender's `template_ids`."""

    lookup_value_converter = "int"
    queryset = MessageTemplate.objects.order_by("name", "language", "id")
    serializer_class = TemplateSerializer
    filterset_class = TemplateFilter

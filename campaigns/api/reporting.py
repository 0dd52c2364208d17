"""Reporting API: a campaign's figures, timeline, recipients one by one and the results CSV.

The figures are the campaign page's: the same counters, the same failure groups, the same
timeline, and the same CSV file.
"""

import django_filters
from django.db.models import F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.importing.export import results_csv_response
from campaigns.models import Campaign, CampaignEvent, Contact, Message
from campaigns.services import lifecycle
from campaigns.services.failure_report import KIND_LABELS

_KINDS = ", ".join(f"`{kind}` ({label.lower()})" for kind, label in KIND_LABELS.items())


def _campaign(request, pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)


class CountersSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Rows in the uploaded list.")
    skipped = serializers.IntegerField(
        help_text="Rows not sent to (invalid, duplicate, opted out)."
    )
    sent = serializers.IntegerField(help_text="Contacts whose message Meta accepted.")
    delivered = serializers.IntegerField(help_text="Messages Meta reported delivered (or read).")
    read = serializers.IntegerField(help_text="Messages Meta reported read.")
    replied = serializers.IntegerField(help_text="Messages the contact answered.")
    failed = serializers.IntegerField(help_text="Contacts that ended failed; see `failures`.")


class ContactStatesSerializer(serializers.Serializer):
    pending = serializers.IntegerField(help_text="Waiting to be sent.")
    claimed = serializers.IntegerField(help_text="Being sent right now.")
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()


class SenderStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The sender's id within this campaign.")
    phone_number_id = serializers.CharField(help_text="Meta's id of the sending number.")
    display_phone_number = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "exhausted"])
    mps = serializers.IntegerField(help_text="Messages per second this number sends at.")
    current_template = serializers.CharField(
        allow_null=True, help_text="The template it sends with next (late binding)."
    )
    exhausted_code = serializers.IntegerField(
        allow_null=True, help_text="Meta's error code that stopped it."
    )
    exhausted_reason = serializers.CharField(help_text="Why it stopped; empty while active.")
    sent = serializers.IntegerField(
        help_text="Sent contacts whose latest message went through this number; the senders "
        "add up to `counters.sent`."
    )
    delivered = serializers.IntegerField(
        help_text="Messages through this number Meta reported delivered (or read)."
    )


class TemplateRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Name and language, e.g. `spring_sale (en_US)`.")


class FailureGroupSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KIND_LABELS), help_text=f"One of {_KINDS}.")
    cause = serializers.CharField(
        help_text="For `not_sent`: `missing_value` or `network`; otherwise the error's scope "
        "(`recipient`, `template`, `invalid_payload`, `phone`, `account`, ...)."
    )
    code = serializers.IntegerField(allow_null=True, help_text="Meta's error code, if any.")
    template = TemplateRefSerializer(
        allow_null=True, help_text="The template that failed; null when none could be filled."
    )
    count = serializers.IntegerField(help_text="Contacts in this group.")
    meaning = serializers.CharField(help_text="What happened, in plain language.")
    action = serializers.CharField(help_text="What TitanFlow did about it, or what to do.")
    meta_said = serializers.CharField(help_text="Meta's own details for one of them, if any.")


class CostLineSerializer(serializers.Serializer):
    category = serializers.CharField(help_text="MARKETING, UTILITY or AUTHENTICATION.")
    market = serializers.CharField(
        help_text="The rate card's market: the recipients' country (ISO code), or `*` for the "
        "markets the card does not name."
    )
    messages = serializers.IntegerField()
    rate = serializers.CharField(help_text="Price per message, a decimal string.")
    currency = serializers.CharField()
    amount = serializers.CharField(help_text="messages × rate, a decimal string.")


class CostTotalSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = serializers.CharField(help_text="A decimal string.")


class CostSerializer(serializers.Serializer):
    messages = serializers.IntegerField()
    totals = CostTotalSerializer(many=True, help_text="One per currency of the rate card.")
    lines = CostLineSerializer(many=True, help_text="By category and market.")


class HeldByMetaSerializer(serializers.Serializer):
    held_for_quality_assessment = serializers.IntegerField(
        help_text="Sends Meta holds while it assesses a new or changed template (not failures)."
    )
    paused = serializers.IntegerField(help_text="Sends Meta accepted for a paused template.")


class CampaignStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Campaign.Status.values)
    pause_reason = serializers.CharField()
    progress = serializers.FloatField(
        help_text="Percent of the contacts to send (total less skipped) that are sent or failed."
    )
    counters = CountersSerializer()
    contacts = ContactStatesSerializer(help_text="Contacts by state right now.")
    senders = SenderStatsSerializer(many=True)
    failures = FailureGroupSerializer(
        many=True, help_text="Failed contacts grouped by kind, error code and template."
    )
    held_by_meta = HeldByMetaSerializer(help_text="Template pacing: held, not failed.")
    spend = CostSerializer(
        help_text="Spend so far: the messages status webhooks called billable, at the rate "
        "card's rate for their category and the recipient's market."
    )


class StatsView(APIView):
    http_method_names = ["get", "options"]

    @extend_schema(
        summary="A campaign's figures",
        description="The counters, contacts by state, each sending number's figures and the "
        "failures grouped by kind, code and template: the same figures as the campaign page.",
        responses=CampaignStatsSerializer,
    )
    def get(self, request, pk: int):
        return Response(lifecycle.campaign_stats(campaign=_campaign(request, pk)))


class EventSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=CampaignEvent.Kind.values)
    actor = serializers.CharField(
        source="actor.username", allow_null=True, default=None, help_text="Null for TitanFlow."
    )

    class Meta:
        model = CampaignEvent
        fields = ["id", "at", "kind", "text", "actor", "code", "template", "phone"]
        extra_kwargs = {
            "template": {"help_text": "The template concerned (template events)."},
            "phone": {"help_text": "The number concerned (a number stopped)."},
        }


@extend_schema(
    summary="A campaign's timeline",
    description="What happened, oldest first: launched or scheduled, paused and resumed (by "
    "whom, why), templates Meta paused, disabled or approved again (with Meta's reason), numbers "
    "stopped and why, failed contacts retried, completed or cancelled.",
)
class TimelineView(generics.ListAPIView):
    serializer_class = EventSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no campaign
            return CampaignEvent.objects.none()
        campaign = _campaign(self.request, self.kwargs["pk"])
        return campaign.events.select_related("actor").order_by("at", "id")


class LatestMessageSerializer(serializers.Serializer):
    wamid = serializers.CharField(help_text="Meta's message id.")
    template_id = serializers.IntegerField()
    template_name = serializers.CharField(source="template.name")
    sender = serializers.CharField(
        source="phone.phone_number_id", help_text="phone_number_id of the number that sent it."
    )
    status = serializers.ChoiceField(choices=Message.Status.values)
    error_code = serializers.IntegerField(allow_null=True)
    error_title = serializers.CharField()
    sent_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    replied_at = serializers.DateTimeField(allow_null=True)


class RecipientSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(choices=Contact.State.values)
    error_code = serializers.IntegerField(source="last_error_code", allow_null=True)
    error = serializers.CharField(source="last_error", help_text="Why it failed, if it did.")
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True), help_text="The uploaded row, by column."
    )
    message = serializers.SerializerMethodField(
        help_text="The contact's latest message (its result); null when none was accepted."
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "phone",
            "name",
            "state",
            "skip_reason",
            "attempts",
            "error_code",
            "error",
            "variables",
            "message",
        ]

    @extend_schema_field(LatestMessageSerializer(allow_null=True))
    def get_message(self, contact) -> dict | None:
        message = self.context["latest"].get(contact.pk)
        return LatestMessageSerializer(message).data if message else None


class RecipientFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=Contact.State.choices)
    template = django_filters.NumberFilter(
        field_name="result_template", help_text="Template id of the latest message (or payload)."
    )
    sender = django_filters.CharFilter(
        field_name="result_sender", help_text="phone_number_id of the number that sent it."
    )
    error_code = django_filters.NumberFilter(field_name="last_error_code")

    class Meta:
        model = Contact
        fields = ["state", "template", "sender", "error_code"]


@extend_schema(
    summary="A campaign's recipients",
    description="Each contact with its state, error and latest message (template, number, "
    "statuses with their times), in list order, 50 a page; filter by `state`, `template` (id), "
    "`sender` (phone_number_id) or `error_code`.",
)
class RecipientsView(generics.ListAPIView):
    serializer_class = RecipientSerializer
    filterset_class = RecipientFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Contact.objects.none()
        campaign = _campaign(self.request, self.kwargs["pk"])
        latest = Message.objects.filter(contact=OuterRef("pk")).order_by("-id")
        return (
            Contact.objects.filter(campaign=campaign)
            .annotate(
                result_template=Coalesce(
                    Subquery(latest.values("template_id")[:1]),
                    F("payload_template_id"),
                    output_field=IntegerField(),
                ),
                result_sender=Subquery(latest.values("phone__phone_number_id")[:1]),
            )
            .order_by("id")
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "latest": getattr(self, "_latest", {})}

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        messages = (
            Message.objects.filter(contact__in=[contact.pk for contact in page or []])
            .select_related("template", "phone")
            .order_by("contact_id", "id")
        )
        # One query for the page: ordered by id, the last one per contact wins.
        self._latest = {message.contact_id: message for message in messages}
        return page


class _CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


class ResultsCsvView(APIView):
    http_method_names = ["get", "options"]
    renderer_classes = [_CSVRenderer, JSONRenderer]

    @extend_schema(
        summary="Every recipient's result as CSV",
        description="The file the campaign page downloads: one line per contact with its state, "
        "error and latest message, then the list's own columns as uploaded (a column named "
        "like one of ours is prefixed `list_`). Streamed, so any size downloads; a cell that a "
        "spreadsheet would run as a formula starts with an apostrophe.",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, pk: int):
        return results_csv_response(campaign=_campaign(request, pk))

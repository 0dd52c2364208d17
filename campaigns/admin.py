from django.contrib import admin

from campaigns.ab.models import AbArm, AbTest
from campaigns.counters import FIELDS
from campaigns.models import (
    Campaign,
    CampaignSender,
    Contact,
    Message,
    OptOut,
    Rate,
    SenderTemplate,
)
from titanflow.admin import JSON_WITHOUT_NUL


class SenderTemplateInline(admin.TabularInline):
    model = SenderTemplate
    extra = 0
    ordering = ["position"]
    raw_id_fields = ["template"]


class CampaignSenderInline(admin.TabularInline):
    model = CampaignSender
    extra = 0
    raw_id_fields = ["phone", "current_template"]
    readonly_fields = ["state", "exhausted_code", "exhausted_reason", "exhausted_at"]
    show_change_link = True


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    formfield_overrides = JSON_WITHOUT_NUL
    list_display = [
        "name",
        "status",
        "owner",
        "total_count",
        "sent_count",
        "delivered_count",
        "read_count",
        "replied_count",
        "failed_count",
        "created_at",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    inlines = [CampaignSenderInline]
    date_hierarchy = "created_at"
    # The status moves only through the lifecycle (which kicks or stops the engine) and the
    # counters only through campaigns.counters; an edit here would make either one lie.
    readonly_fields = [
        "status",
        "pause_reason",
        *(f"{name}_count" for name in FIELDS),
        "launched_at",
        "completed_at",
        "import_rows_done",
        "import_rows_estimate",
    ]


@admin.register(CampaignSender)
class CampaignSenderAdmin(admin.ModelAdmin):
    list_display = ["campaign", "phone", "state", "mps", "current_template", "exhausted_code"]
    list_filter = ["state"]
    search_fields = ["campaign__name", "phone__display_phone_number", "phone__phone_number_id"]
    list_select_related = ["campaign", "phone", "current_template"]
    raw_id_fields = ["campaign", "phone", "current_template"]
    inlines = [SenderTemplateInline]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    formfield_overrides = JSON_WITHOUT_NUL
    list_display = ["phone", "name", "campaign", "state", "attempts", "last_error_code"]
    list_filter = ["state", "skip_reason"]
    search_fields = ["phone", "name"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign", "claimed_by", "payload_template", "ab_arm"]
    show_full_result_count = False  # exact counts over millions of contacts are slow


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "wamid",
        "recipient",
        "campaign",
        "phone",
        "template",
        "status",
        "error_code",
        "sent_at",
    ]
    list_filter = ["status", "error_code"]
    search_fields = ["wamid", "recipient"]
    list_select_related = ["campaign", "phone", "template"]
    raw_id_fields = ["campaign", "contact", "phone", "template"]
    show_full_result_count = False


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["phone", "reason", "source", "created_at"]
    list_filter = ["reason"]
    search_fields = ["phone"]


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    """The rate card the review step's estimate and the campaign's spend use."""

    list_display = ["category", "market", "price", "currency"]
    list_editable = ["price", "currency"]
    list_filter = ["category", "currency"]
    search_fields = ["market"]
    ordering = ["category", "market"]


class AbArmInline(admin.TabularInline):
    model = AbArm
    extra = 0
    ordering = ["position"]
    raw_id_fields = ["template"]
    formfield_overrides = JSON_WITHOUT_NUL


@admin.register(AbTest)
class AbTestAdmin(admin.ModelAdmin):
    list_display = ["campaign", "test_share", "metric", "auto_pick_hours", "winner", "decided_at"]
    list_filter = ["metric"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign", "winner"]
    raw_id_fields = ["campaign"]
    # The winner moves contacts: it is chosen on the campaign page or by the beat, never here.
    readonly_fields = ["winner", "decided_at", "decided_by", "test_done_at", "note"]
    inlines = [AbArmInline]

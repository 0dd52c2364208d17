from django.contrib import admin

from webhooks.models import PendingStatus, WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "received_at", "processed_at", "attempts", "signature_valid", "error"]
    list_filter = [
        ("processed_at", admin.EmptyFieldListFilter),
        ("error", admin.EmptyFieldListFilter),
        "signature_valid",
    ]
    readonly_fields = [
        "body_text",
        "signature_valid",
        "received_at",
        "processed_at",
        "attempts",
        "error",
    ]
    exclude = ["body"]
    show_full_result_count = False

    @admin.display(description="Body")
    def body_text(self, obj):
        return bytes(obj.body).decode("utf-8", "replace")


@admin.register(PendingStatus)
class PendingStatusAdmin(admin.ModelAdmin):
    list_display = ["wamid", "status", "callback", "first_seen_at", "attempts", "given_up_at"]
    list_filter = ["status", ("given_up_at", admin.EmptyFieldListFilter)]
    search_fields = ["wamid", "callback"]
    readonly_fields = [f.name for f in PendingStatus._meta.fields]
    show_full_result_count = False

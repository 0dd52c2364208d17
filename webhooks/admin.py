from django.contrib import admin

from webhooks.models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "received_at", "processed_at", "attempts", "signature_valid", "error"]
    list_filter = ["signature_valid", ("processed_at", admin.EmptyFieldListFilter)]
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

from django import forms
from django.contrib import admin, messages

from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from templates_app.services.jobs import account_sync_enqueue
from templates_app.services.sync import AccountVerificationError, account_verify_token
from titanflow.admin import JSON_WITHOUT_NUL


class AccountAdminForm(forms.ModelForm):
    # Secrets are write-only: the admin never shows them back.
    access_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the stored token.",
    )
    app_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the stored secret.",
    )

    class Meta:
        model = WhatsAppAccount
        fields = ["waba_id", "name", "access_token", "app_secret"]

    def clean_access_token(self):
        token = self.cleaned_data["access_token"]
        if not token and not self.instance.pk:
            raise forms.ValidationError("An access token is required for a new account.")
        return token or self.instance.access_token

    def clean_app_secret(self):
        return self.cleaned_data["app_secret"] or self.instance.app_secret

    def clean(self):
        data = super().clean()
        # An empty token field keeps the stored token, which was checked when it was entered.
        new_token = bool(self.data.get(self.add_prefix("access_token")))
        must_check = new_token or "waba_id" in self.changed_data or not self.instance.pk
        if self.errors or not must_check:
            return data
        try:
            account_verify_token(waba_id=data["waba_id"], access_token=data["access_token"])
        except AccountVerificationError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(WhatsAppAccount)
class WhatsAppAccountAdmin(admin.ModelAdmin):
    form = AccountAdminForm
    list_display = ["name", "waba_id", "health", "last_synced_at"]
    list_filter = ["health"]
    search_fields = ["name", "waba_id"]
    readonly_fields = ["health", "health_detail", "last_synced_at"]
    actions = ["sync_now"]

    @admin.action(description="Sync now (numbers and templates)")
    def sync_now(self, request, queryset):
        for account in queryset.order_by("id"):
            account_sync_enqueue(account=account)
        self.message_user(
            request, f"Sync queued for {queryset.count()} account(s).", messages.SUCCESS
        )


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = [
        "display_phone_number",
        "verified_name",
        "phone_number_id",
        "account",
        "quality_rating",
        "status",
        "throughput_level",
        "messaging_limit",
        "max_mps",
    ]
    list_filter = ["quality_rating", "status", "throughput_level", "account"]
    search_fields = ["display_phone_number", "verified_name", "phone_number_id"]
    list_select_related = ["account"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    formfield_overrides = JSON_WITHOUT_NUL
    list_display = [
        "name",
        "language",
        "category",
        "status",
        "quality_score",
        "account",
        "deleted_at_meta",
    ]
    list_filter = ["status", "category", "language", "deleted_at_meta", "account"]
    search_fields = ["name", "meta_template_id"]
    list_select_related = ["account"]
    readonly_fields = ["slots", "status_changed_at", "last_synced_at"]

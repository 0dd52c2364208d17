from django import forms
from django.contrib import admin
from django.db import models

from titanflow.models import AuditEntry


class NulFreeJSONField(forms.JSONField):
    """PostgreSQL's jsonb refuses a \\u0000 anywhere in a document (a 500 on save)."""

    def to_python(self, value):
        value = super().to_python(value)
        if _holds_nul(value):
            raise forms.ValidationError("JSON here cannot contain NUL characters (\\u0000).")
        return value


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


# For every ModelAdmin that edits a JSONField.
JSON_WITHOUT_NUL = {models.JSONField: {"form_class": NulFreeJSONField}}


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the log is evidence, so nobody edits or deletes it here."""

    list_display = ["at", "username", "action", "via", "object_type", "object_repr"]
    list_filter = ["via", "action", "object_type"]
    search_fields = ["username", "object_repr", "object_id"]
    date_hierarchy = "at"
    readonly_fields = [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

from django.contrib import admin

from titanflow.models import AuditEntry


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

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Who changed what, through which door. Written by `titanflow.audit.audit_record` only."""

    class Via(models.TextChoices):
        PAGE = "page"
        API = "api"
        ADMIN = "admin"
        COMMAND = "command"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # SET_NULL plus the name kept beside it: deleting a user must not erase what they did.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=40, db_index=True)
    via = models.CharField(max_length=8, choices=Via.choices)
    object_type = models.CharField(max_length=100, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    object_repr = models.CharField(max_length=200, blank=True, default="")
    # Field names and new values; secrets appear only as "changed", never with their value.
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["user", "-at"], name="audit_user_at")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.username or '-'} {self.action} {self.object_repr}"

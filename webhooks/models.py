from django.db import models
from django.db.models import Q


class WebhookEvent(models.Model):
    """One signed delivery from Meta, kept raw for processing, audit and replay."""

    body = models.BinaryField()
    signature_valid = models.BooleanField()
    received_at = models.DateTimeField(db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], condition=Q(processed_at__isnull=True), name="webhook_unprocessed"
            )
        ]

    def __str__(self):
        return f"delivery {self.pk} at {self.received_at:%Y-%m-%d %H:%M:%S}"

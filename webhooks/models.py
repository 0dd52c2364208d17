from django.db import connection, models
from django.db.models import Q


class WebhookEvent(models.Model):
    """One signed delivery from Meta, kept raw for processing, audit and replay."""

    body = models.BinaryField()
    signature_valid = models.BooleanField()
    # False when an account's own app secret signed it (not META_APP_SECRET): such a delivery
    # may not lift anyone's opt-out, since the opt-out list is not any one account's.
    app_signed = models.BooleanField(default=True, db_default=True)
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

    @classmethod
    def store(cls, body: bytes, *, app_signed: bool = True) -> None:
        """Stores a verified delivery. Plain SQL because this runs for every webhook and the
        ORM's create() measured twice the CPU (0.5-0.7 ms against 0.26-0.35 ms)."""
        with connection.cursor() as cursor:
            cursor.execute(_STORE_SQL, [body, app_signed])

    @classmethod
    def store_many(cls, rows: list[tuple[bytes, bool]]) -> None:
        """Stores several verified deliveries (body, app_signed) in one statement and commit."""
        params = [value for row in rows for value in row]
        with connection.cursor() as cursor:
            cursor.execute(store_many_sql(len(rows)), params)


def store_many_sql(count: int) -> str:
    """The INSERT of `count` verified deliveries, each given as (body, app_signed)."""
    return f"{_STORE_MANY_SQL} {', '.join([_STORE_ROW] * count)}"


_STORE_MANY_SQL = (
    f"INSERT INTO {WebhookEvent._meta.db_table} (body, signature_valid, app_signed, received_at, "
    "attempts, error) VALUES"
)
_STORE_ROW = "(%s, true, %s, now(), 0, '')"
_STORE_SQL = f"{_STORE_MANY_SQL} {_STORE_ROW}"


class PendingStatus(models.Model):
    """A status whose message we do not know yet, kept and retried instead of dropped.

    The engine writes its messages in batches and an ambiguous send has no wamid until Meta's
    webhook names it, so a status may arrive first. It is retried with growing pauses; past the
    grace period it stays here, marked given up, for audit until the retention prunes it.
    """

    wamid = models.CharField(max_length=128, db_index=True)
    status = models.CharField(max_length=10)
    timestamp = models.DateTimeField()
    callback = models.CharField(max_length=512, blank=True, default="")
    recipient = models.CharField(max_length=32, blank=True, default="")
    phone_number_id = models.CharField(max_length=64, blank=True, default="")
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.TextField(blank=True, default="")
    error_details = models.TextField(blank=True, default="")
    billable = models.BooleanField(null=True, blank=True)
    pricing_category = models.CharField(max_length=32, blank=True, default="", db_default="")
    first_seen_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    given_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(given_up_at__isnull=True),
                name="pending_status_due",
            )
        ]

    def __str__(self):
        return f"{self.status} for {self.wamid}"

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Message
from templates_app.models import PhoneNumber


class ConversationQuerySet(models.QuerySet):
    ORDERS = {
        "unread": ("-unread_count", "-last_message_at", "-id"),
        "recent": ("-last_message_at", "id"),
    }

    def search(self, query: str):
        """By contact name, or by number in any format ("+971 50 ..." finds 97150...)."""
        query = query.replace("\x00", "").strip()  # Postgres text cannot hold a NUL
        if not query:
            return self
        digits = "".join(ch for ch in query if ch.isdigit())
        matches = Q(list_name__icontains=query) | Q(contact_name__icontains=query)
        if digits:
            matches |= Q(wa_id__contains=digits)
        return self.filter(matches)

    def in_inbox_order(self, sort: str):
        """Unread first (the default) or newest first; both follow an index."""
        return self.order_by(*self.ORDERS.get(sort, self.ORDERS["unread"]))


class Conversation(models.Model):
    """The thread between one of our numbers and one WhatsApp user."""

    # Meta accepts free-form messages only this long after the customer last wrote.
    REPLY_WINDOW = timedelta(hours=24)

    phone = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="conversations")
    wa_id = models.CharField(max_length=32, help_text="The user's WhatsApp id (their number)")
    user_id = models.CharField(
        max_length=128, blank=True, default="", help_text="Business-scoped user id, when given"
    )
    contact_name = models.CharField(
        max_length=255, blank=True, default="", help_text="The WhatsApp profile name"
    )
    # db_default: the webhook ingest inserts conversations in raw SQL.
    list_name = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text="The name the campaign's list gives",
    )
    unread_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_inbound_at = models.DateTimeField(
        null=True, blank=True, help_text="Opens the 24-hour customer-service window"
    )
    last_message_preview = models.CharField(max_length=200, blank=True, default="")

    objects = ConversationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["phone", "wa_id"], name="one_conversation_per_pair")
        ]
        indexes = [
            models.Index(fields=["-last_message_at", "id"], name="conversation_recent"),
            models.Index(fields=["-unread_count", "-last_message_at"], name="conversation_unread"),
        ]

    def __str__(self):
        return f"{self.wa_id} ↔ {self.phone}"

    @property
    def display_name(self) -> str:
        """The marketer's own name for the person (from their list), else their WhatsApp one."""
        return self.list_name or self.contact_name or f"+{self.wa_id}"

    @property
    def reply_window_closes_at(self) -> datetime | None:
        if self.last_inbound_at is None:
            return None
        return self.last_inbound_at + self.REPLY_WINDOW

    @property
    def reply_window_open(self) -> bool:
        closes_at = self.reply_window_closes_at
        return closes_at is not None and closes_at > timezone.now()


class InboxMessage(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "in"
        OUTBOUND = "out"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    wamid = models.CharField(max_length=128, unique=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    type = models.CharField(max_length=32, default="text")
    body = models.TextField(blank=True, default="")
    raw = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, blank=True, default="")
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.TextField(blank=True, default="")
    context_wamid = models.CharField(max_length=128, blank=True, default="")
    campaign_message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    timestamp = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "timestamp"], name="inbox_msg_thread")]

    def __str__(self):
        return self.wamid

import json

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from templates_app.models import MessageTemplate, PhoneNumber
from titanflow.access import MARKETER, role_of
from titanflow.whatsapp import payloads


class CampaignQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Marketers reach the campaigns they own; admins and viewers see every campaign."""
        role = role_of(user)
        if role is None:
            return self.none()
        if role == MARKETER:
            return self.filter(owner=user)
        return self

    def live(self):
        """Campaigns that may still send: the dashboard, the engine and its reactions share it."""
        return self.filter(status__in=Campaign.LIVE)

    def in_progress(self):
        """Campaigns whose figures still move (imports, sends, webhooks): what pages refresh."""
        return self.filter(status__in=Campaign.IN_PROGRESS)

    def running(self):
        return self.filter(status=Campaign.Status.RUNNING)


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        IMPORTING = "importing"
        READY = "ready"
        SCHEDULED = "scheduled"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        FAILED = "failed"

    EDITABLE = (Status.DRAFT, Status.READY, Status.FAILED)
    LIVE = (Status.RUNNING, Status.SCHEDULED, Status.PAUSED)
    IN_PROGRESS = (Status.IMPORTING, *LIVE)
    # Ten years: a wider dedup window says nothing more (and 10**20 days overflowed a 500).
    DEDUP_DAYS_MAX = 3650

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    pause_reason = models.TextField(blank=True, default="")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    dedup_days = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(DEDUP_DAYS_MAX)],
        help_text="Skip numbers messaged by any campaign within this many days.",
    )
    max_mps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Campaign-wide cap on messages per second."
    )
    # Deliverability guard (campaigns/engine/guard.py): nothing is sent after the deadline, and
    # no recipient is sent to while their local time is inside the quiet hours.
    deadline = models.DateTimeField(
        null=True, blank=True, help_text="Nothing is sent after this; unsent contacts expire."
    )
    quiet_start = models.TimeField(
        null=True, blank=True, help_text="Start of quiet hours in each recipient's local time."
    )
    quiet_end = models.TimeField(
        null=True, blank=True, help_text="End of quiet hours in each recipient's local time."
    )
    quiet_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="A time zone (e.g. Asia/Dubai) for every recipient, instead of their number's.",
    )
    # Why the engine is holding this campaign now (the portfolio's limit) and when it expects
    # room again; empty while it sends freely. Shown on the campaign page.
    hold_reason = models.TextField(blank=True, default="")
    held_until = models.DateTimeField(null=True, blank=True)
    # {"<template id>": {"<slot key>": {"column": "..."} | {"text": "..."}}}
    variable_mapping = models.JSONField(default=dict, blank=True)
    track_clicks = models.BooleanField(
        default=False, db_default=False, help_text="Links go out as TitanFlow short links."
    )

    # The uploaded list and what the import made of it.
    source_file = models.FileField(upload_to="imports/%Y/%m/", blank=True)
    source_name = models.CharField(max_length=255, blank=True, default="")
    columns = models.JSONField(default=list, blank=True)
    phone_column = models.CharField(max_length=255, blank=True, default="")
    name_column = models.CharField(max_length=255, blank=True, default="")
    # Where national numbers ("050 123 4567") of the list are read; empty = DEFAULT_PHONE_REGION.
    phone_region = models.CharField(max_length=2, blank=True, default="")
    import_rows_done = models.PositiveBigIntegerField(default=0)
    import_rows_estimate = models.PositiveBigIntegerField(default=0)
    import_report = models.JSONField(default=dict, blank=True)
    import_error = models.TextField(blank=True, default="")

    total_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    delivered_count = models.PositiveIntegerField(default=0)
    read_count = models.PositiveIntegerField(default=0)
    replied_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_status_sched")]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def region(self) -> str:
        """The region national numbers of the list are read in."""
        return self.phone_region or settings.DEFAULT_PHONE_REGION

    @property
    def to_send(self) -> int:
        """Contacts the campaign will try: skipped rows were never work."""
        return max(0, self.total_count - self.skipped_count)

    @property
    def progress(self) -> float:
        """Share of the contacts to send that reached an end (sent or failed), 0-100."""
        if not self.to_send:
            return 0.0
        return min(100.0, 100 * (self.sent_count + self.failed_count) / self.to_send)

    @property
    def has_quiet_hours(self) -> bool:
        return (
            self.quiet_start is not None
            and self.quiet_end is not None
            and self.quiet_start != self.quiet_end
        )


class CampaignSender(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"
        EXHAUSTED = "exhausted"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="senders")
    phone = models.ForeignKey(PhoneNumber, on_delete=models.PROTECT, related_name="senders")
    mps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rate for this campaign; the number's max if empty."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    exhausted_code = models.IntegerField(null=True, blank=True)
    exhausted_reason = models.TextField(blank=True, default="")
    exhausted_at = models.DateTimeField(null=True, blank=True)
    # Set while the guard holds this sender without stopping it (its number's quality is RED, the
    # portfolio's limit is reached); cleared when it sends again.
    hold_reason = models.TextField(blank=True, default="")
    held_until = models.DateTimeField(null=True, blank=True)
    # Late binding: the template this sender uses next, moved along `templates` by position.
    current_template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    templates = models.ManyToManyField(
        MessageTemplate, through="SenderTemplate", related_name="campaign_senders"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "phone"], name="one_sender_per_phone")
        ]

    def __str__(self):
        return f"{self.phone} in {self.campaign_id}"


class SenderTemplate(models.Model):
    """One template in a sender's ordered fallback list; the marketer's order, always."""

    sender = models.ForeignKey(
        CampaignSender, on_delete=models.CASCADE, related_name="template_slots"
    )
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    failed_code = models.IntegerField(
        null=True, blank=True, help_text="Set when Meta refused this template for this sender."
    )
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "position"], name="one_template_per_position"
            ),
            models.UniqueConstraint(fields=["sender", "template"], name="template_once_per_sender"),
        ]

    def __str__(self):
        return f"#{self.position} {self.template_id}"


class Contact(models.Model):
    """A campaign recipient: the unit of work the senders claim."""

    class State(models.TextChoices):
        PENDING = "pending"
        CLAIMED = "claimed"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"

    # Indexed by contact_campaign_state (campaign first); a separate index only slowed imports.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    phone = models.CharField(max_length=20, help_text="E.164 with the leading +")
    name = models.CharField(max_length=255, blank=True, default="")
    variables = models.JSONField(default=dict, help_text="The uploaded row, by column name")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.ForeignKey(
        CampaignSender,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # partial index below: imported (unclaimed) rows cost it nothing
    )
    lease_until = models.DateTimeField(null=True, blank=True)
    # The fence: the token of the slice that holds this claim. Every write of a slice names its
    # token, so a slice whose lease was taken away can neither send nor write this contact.
    claim_token = models.BigIntegerField(null=True, blank=True)
    # Set just before the request goes to Meta: a claim without it was certainly never sent and
    # returns to the pool as soon as its lease ends; one with it waits for Meta's webhook.
    sending = models.BooleanField(default=False, db_default=False)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Backoff: not to be claimed before this time."
    )
    # The request body last built for this contact and the template it was built from;
    # every retry with that template sends these bytes unchanged.
    payload = models.TextField(blank=True, default="")
    payload_template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # partial index below, as for claimed_by
    )
    last_error_code = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # The A/B arm this contact was assigned at launch (campaigns/ab/assign.py); empty outside
    # the test share, whose contacts get the winner.
    ab_arm = models.ForeignKey(
        "campaigns.AbArm",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # read with the campaign's rows (contact_campaign_state), never alone
    )
    skip_reason = models.CharField(max_length=32, blank=True, default="")
    row_number = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["campaign", "id"],
                condition=Q(state="pending"),
                name="contact_pending_queue",
            ),
            models.Index(
                fields=["lease_until"], condition=Q(state="claimed"), name="contact_claim_lease"
            ),
            models.Index(fields=["campaign", "state"], name="contact_campaign_state"),
            models.Index(
                fields=["claimed_by"],
                condition=Q(claimed_by__isnull=False),
                name="contact_claimed_by",
            ),
            models.Index(
                fields=["payload_template"],
                condition=Q(payload_template__isnull=False),
                name="contact_payload_template",
            ),
        ]

    def __str__(self):
        return self.phone


class Message(models.Model):
    """One accepted send: what we sent, through which number and template, and its fate."""

    class Status(models.TextChoices):
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        FAILED = "failed"

    # Forward-only status moves compare these ranks; failed is terminal.
    RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}

    # Meta's statuses UPDATE every message two or three times, so the table is laid out for
    # HOT updates: no index holds a column a status changes (status, *_at but sent_at, errors),
    # and pages keep room for the new row versions (fillfactor 50, set in migration 0004). Only
    # the indexes a page or the engine reads exist: the campaign is covered by (campaign,
    # sent_at); phone and template are looked up only when one is deleted, which TitanFlow
    # never does (they are marked deleted); wamid is a unique constraint rather than
    # `unique=True`, which would add a second, LIKE-pattern index nothing queries.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="messages")
    phone = models.ForeignKey(
        PhoneNumber, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    recipient = models.CharField(max_length=20, help_text="E.164 with the leading +")
    wamid = models.CharField(max_length=128)
    request_body = models.TextField(help_text="The exact JSON body that was sent")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENT)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    # What Meta answered the send with: "accepted", or "held_for_quality_assessment" / "paused"
    # (template pacing), which are not failures.
    accepted_status = models.CharField(max_length=32, blank=True, default="", db_default="")
    # From the `pricing` block of status webhooks: whether Meta bills it and under which category.
    billable = models.BooleanField(null=True, blank=True)
    pricing_category = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "sent_at"], name="message_campaign_sent"),
            models.Index(fields=["recipient", "sent_at"], name="message_recipient_sent"),
            models.Index(fields=["sent_at"], name="message_sent_at"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["wamid"], name="message_wamid_unique"),
        ]

    def __str__(self):
        return self.wamid

    def sent_preview(self) -> list[dict]:
        """The message as its recipient saw it: the template filled with the values sent
        (see `payloads.render_preview`)."""
        template = self.template
        try:
            slots = [payloads.Slot.from_dict(slot) for slot in template.slots] or (
                payloads.parse_slots(template.components, template.parameter_format)
            )
            sent = json.loads(self.request_body or "{}")
        except (payloads.UnsupportedTemplateError, ValueError):
            slots, sent = [], {}
        values = payloads.payload_values(sent if isinstance(sent, dict) else {}, slots)
        return payloads.render_preview(template.components, values)


class OptOut(models.Model):
    class Reason(models.TextChoices):
        KEYWORD = "keyword", "Replied with an opt-out keyword"
        USER_PREFERENCES = "user_preferences", "Stopped marketing messages in WhatsApp"
        META_131050 = "131050", "Meta refused: user stopped marketing messages (131050)"
        MANUAL = "manual", "Added by staff"

    class QuerySet(models.QuerySet):
        def active(self):
            return self.filter(active=True)

    phone = models.CharField(max_length=20, unique=True, help_text="E.164 with the leading +")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    source = models.CharField(max_length=255, blank=True, default="")
    # A "resume" keeps the row inactive with its time, so an older "stop" arriving late cannot
    # opt the person out again, and an older "resume" cannot undo a newer "stop".
    active = models.BooleanField(default=True, db_default=True)
    changed_at = models.DateTimeField(
        default=timezone.now,
        db_default=Now(),
        help_text="When the person last stopped or resumed (Meta's time).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = QuerySet.as_manager()

    def __str__(self):
        return self.phone


class CampaignEvent(models.Model):
    """One entry of a campaign's timeline: what happened, when, why and who did it."""

    class Kind(models.TextChoices):
        LAUNCHED = "launched"
        SCHEDULED = "scheduled"
        PAUSED = "paused"
        RESUMED = "resumed"
        CANCELLED = "cancelled"
        COMPLETED = "completed"
        RETRIED = "retried"
        TEMPLATE_PAUSED = "template_paused", "Template paused"
        TEMPLATE_DISABLED = "template_disabled", "Template disabled"
        TEMPLATE_APPROVED = "template_approved", "Template approved"
        SENDER_STOPPED = "sender_stopped", "Number stopped"
        PORTFOLIO_HOLD = "portfolio_hold", "Portfolio limit hold"
        TEMPLATE_QUALITY = "template_quality", "Template quality"
        AB_TEST_DONE = "ab_test_done", "A/B test share finished"
        AB_WINNER = "ab_winner", "A/B winner chosen"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    text = models.TextField(help_text="What happened and why, for the marketer.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who did it; empty when TitanFlow or Meta did.",
    )
    code = models.IntegerField(null=True, blank=True, help_text="Meta's error code, if any.")
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    phone = models.ForeignKey(
        PhoneNumber, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["campaign", "at"], name="campaign_event_at")]

    def __str__(self):
        return f"{self.kind} {self.at:%Y-%m-%d %H:%M}"


class Rate(models.Model):
    """What Meta charges for one delivered template of a category in a market (the recipient's
    country), per message. Seeded from campaigns/data/rate_card.csv; admins keep it current."""

    OTHER_MARKET = "*"

    category = models.CharField(max_length=32, help_text="MARKETING, UTILITY, AUTHENTICATION")
    market = models.CharField(
        max_length=8, help_text="ISO country code of the recipient, or * for every other market."
    )
    price = models.DecimalField(max_digits=10, decimal_places=5)
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["category", "market"], name="one_rate_per_market"),
            models.CheckConstraint(condition=Q(price__gte=0), name="rate_not_negative"),
        ]

    def __str__(self):
        return f"{self.category} {self.market}: {self.price} {self.currency}"


from campaigns.ab.models import AbArm, AbTest  # noqa: E402, F401  (registers the models)
from campaigns.clicks.models import TrackedLink  # noqa: E402, F401  (registers the model)

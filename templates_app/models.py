from django.db import models
from django.db.models import Q

from titanflow.crypto import EncryptedTextField


class WhatsAppAccount(models.Model):
    class Health(models.TextChoices):
        OK = "ok", "OK"
        TOKEN_INVALID = "token_invalid", "Access token invalid"
        RESTRICTED = "restricted", "Restricted by Meta"

    waba_id = models.CharField("WABA id", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    access_token = EncryptedTextField()
    app_secret = EncryptedTextField(
        blank=True, default="", help_text="Signs this account's webhooks; META_APP_SECRET if empty."
    )
    health = models.CharField(max_length=20, choices=Health.choices, default=Health.OK)
    health_detail = models.TextField(blank=True, default="")
    # The business portfolio's messaging limit: unique recipients per rolling 24 h, shared by
    # every number (null: unlimited or not known yet). From sync and Meta's webhooks.
    messaging_limit = models.PositiveIntegerField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} ({self.waba_id})"

    # Meta's tiers: 250 → 2K → 10K → 100K → unlimited unique users per rolling 24 h.
    TIERS = {
        "TIER_250": 250,
        "TIER_1K": 1000,
        "TIER_2K": 2000,
        "TIER_10K": 10_000,
        "TIER_100K": 100_000,
    }
    UNLIMITED = ("TIER_UNLIMITED", "UNLIMITED")

    @classmethod
    def limit_from_tier(cls, raw) -> tuple[bool, int | None]:
        """(understood, limit) for a tier as Meta names it ("TIER_2K", "2000", 250...);
        limit None means unlimited."""
        value = str(raw or "").strip().upper()
        if value in cls.UNLIMITED:
            return True, None
        if value in cls.TIERS:
            return True, cls.TIERS[value]
        digits = value.removeprefix("TIER_").replace(",", "")
        multiplier = 1000 if digits.endswith("K") else 1
        digits = digits.removesuffix("K")
        if digits.isdigit() and int(digits) > 0:
            return True, int(digits) * multiplier
        return False, None

    def mark_health(self, health: str, detail: str = "") -> None:
        self.health, self.health_detail = health, detail
        self.save(update_fields=["health", "health_detail", "updated_at"])


class PhoneNumber(models.Model):
    """A sender number. `phone_number_id` is the one identifier used outside the database."""

    THROUGHPUT_MPS = {"STANDARD": 80, "HIGH": 1000}

    account = models.ForeignKey(WhatsAppAccount, on_delete=models.CASCADE, related_name="phones")
    phone_number_id = models.CharField(max_length=64, unique=True)
    display_phone_number = models.CharField(max_length=32)
    verified_name = models.CharField(max_length=200, blank=True, default="")
    quality_rating = models.CharField(max_length=16, blank=True, default="NA")
    status = models.CharField(max_length=32, blank=True, default="")
    throughput_level = models.CharField(max_length=16, blank=True, default="STANDARD")
    messaging_limit = models.CharField(max_length=32, blank=True, default="")
    max_mps = models.PositiveIntegerField(
        default=80, help_text="Messages per second; defaults from the throughput level."
    )
    max_mps_overridden = models.BooleanField(
        default=False, help_text="Set when staff lowered the rate; sync then leaves it alone."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(max_mps__gte=1), name="phone_mps_positive")
        ]

    def __str__(self):
        return self.display_phone_number or self.phone_number_id

    @property
    def rate_ceiling(self) -> int:
        """The most Meta allows this number to send per second."""
        return self.THROUGHPUT_MPS.get(self.throughput_level, self.THROUGHPUT_MPS["STANDARD"])

    def set_max_mps(self, max_mps: int) -> None:
        """Lower this number's pace, or give it back its full rate; sync keeps a lowered rate."""
        if not 1 <= max_mps <= self.rate_ceiling:
            raise ValueError(f"Choose between 1 and {self.rate_ceiling} messages per second.")
        self.max_mps = max_mps
        self.max_mps_overridden = max_mps < self.rate_ceiling
        self.save(update_fields=["max_mps", "max_mps_overridden", "updated_at"])


class MessageTemplateQuerySet(models.QuerySet):
    def sendable(self):
        return self.filter(
            status=MessageTemplate.Status.APPROVED, deleted_at_meta=False, unsupported_reason=""
        ).filter(Q(approved_category="") | Q(category=models.F("approved_category")))


class MessageTemplate(models.Model):
    class Status(models.TextChoices):
        APPROVED = "APPROVED"
        PENDING = "PENDING"
        REJECTED = "REJECTED"
        PAUSED = "PAUSED"
        DISABLED = "DISABLED"
        FLAGGED = "FLAGGED"
        IN_APPEAL = "IN_APPEAL"
        PENDING_DELETION = "PENDING_DELETION"
        DELETED = "DELETED"
        LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
        ARCHIVED = "ARCHIVED"
        LOCKED = "LOCKED"

    class ParameterFormat(models.TextChoices):
        POSITIONAL = "POSITIONAL"
        NAMED = "NAMED"

    account = models.ForeignKey(WhatsAppAccount, on_delete=models.CASCADE, related_name="templates")
    meta_template_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=32, blank=True, default="")
    approved_category = models.CharField(
        max_length=32, blank=True, default="", help_text="The category Meta approved it under."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True, default="")
    quality_score = models.CharField(max_length=16, blank=True, default="")
    components = models.JSONField(default=list)
    parameter_format = models.CharField(
        max_length=12, choices=ParameterFormat.choices, default=ParameterFormat.POSITIONAL
    )
    slots = models.JSONField(default=list, help_text="Parsed variable slots, see whatsapp.payloads")
    unsupported_reason = models.TextField(
        blank=True, default="", help_text="Why TitanFlow cannot send it (set when parsing fails)."
    )
    deleted_at_meta = models.BooleanField(
        default=False, help_text="No longer listed by Meta; kept for history."
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MessageTemplateQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name", "language"], name="template_unique_per_account"
            )
        ]

    def __str__(self):
        return f"{self.name} [{self.language}]"

    @property
    def is_sendable(self) -> bool:
        """Approved, still listed, understood, and not moved away from its approved category."""
        return (
            self.status == self.Status.APPROVED
            and not self.deleted_at_meta
            and not self.unsupported_reason
            and (not self.approved_category or self.category == self.approved_category)
        )

    @property
    def unavailable_reason(self) -> str:
        """Why a campaign cannot pick this template, in a sentence; empty when it can."""
        if self.deleted_at_meta:
            return "Meta no longer lists this template."
        if self.unsupported_reason:
            return self.unsupported_reason
        if self.status != self.Status.APPROVED:
            return f"Meta reports it {self.status.lower().replace('_', ' ')}."
        if self.approved_category and self.category != self.approved_category:
            return (
                f"Meta moved it from {self.approved_category.lower()} to "
                f"{self.category.lower()}; it is not approved for that."
            )
        return ""

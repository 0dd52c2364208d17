"""Meta's webhook events about our assets: templates, phone numbers and accounts.

Template states set here are stored and stay until Meta says otherwise (APPROVED or REINSTATED),
whatever the last sync saw; after they commit, `template_status_changed` tells the engine which
templates to look at again so no sender uses a paused template after the event is processed.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from templates_app.signals import (
    phone_health_changed,
    template_quality_changed,
    template_status_changed,
)
from titanflow.whatsapp.values import mapping, mappings, text

logger = logging.getLogger(__name__)

Status = MessageTemplate.Status
# Meta's event name → the status stored; events missing here (UNARCHIVED, ...) are left to sync.
STATUS_EVENTS = {
    **{s.value: s.value for s in Status},
    "REINSTATED": Status.APPROVED,
}
DELETION_EVENTS = {Status.DELETED, Status.PENDING_DELETION}
# The older quality events name no rating; FLAGGED is Meta's "quality dropped to low".
PHONE_QUALITY_EVENTS = {"FLAGGED": "RED", "UNFLAGGED": "GREEN"}
HIGH_THROUGHPUT = "HIGH"
LOW_QUALITY = ("YELLOW", "RED")
RESTRICTING_ACCOUNT_EVENTS = {"ACCOUNT_RESTRICTION", "ACCOUNT_VIOLATION", "DISABLED_UPDATE"}
BAN_LIFTED = "REINSTATE"


@dataclass(frozen=True)
class AssetEvent:
    """One `change` of an entry: `field` names the kind, `value` is Meta's object as sent."""

    waba_id: str
    field: str
    value: dict
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class AccountRestriction:
    account_id: int
    reason: str


def template_events_apply(*, events: list[AssetEvent]) -> list[int]:
    """Applies template status, category and quality events; returns the ids whose sendability
    may have changed, and announces them once the transaction commits."""
    handlers = {
        "message_template_status_update": _template_status,
        "template_category_update": _template_category,
        "message_template_quality_update": _template_quality,
    }
    changed: list[int] = []
    with transaction.atomic():
        for event in events:
            template = _template_for(event)
            if template is None:
                logger.info("template event for an unknown template: %s", event.value)
                continue
            if handlers[event.field](template, event):
                changed.append(template.pk)
        if changed:
            transaction.on_commit(
                lambda: template_status_changed.send(
                    sender=MessageTemplate, template_ids=sorted(set(changed))
                )
            )
    return sorted(set(changed))


def _template_for(event: AssetEvent) -> MessageTemplate | None:
    value = event.value
    # FOR NO KEY UPDATE: serialises the writers of these rows without blocking the foreign-key
    # checks of the messages the engine is inserting meanwhile (a plain FOR UPDATE deadlocked
    # with the engine's flush, which then had to be retried).
    templates = MessageTemplate.objects.select_for_update(no_key=True).filter(
        account__waba_id=event.waba_id
    )
    meta_id = text(value.get("message_template_id"), 64)
    found = templates.filter(meta_template_id=meta_id).order_by("id").first() if meta_id else None
    name = text(value.get("message_template_name"), 512)
    if found is None and name:
        language = text(value.get("message_template_language"), 16)
        found = templates.filter(name=name, language=language).order_by("id").first()
    return found


def _is_stale(template: MessageTemplate, event: AssetEvent) -> bool:
    # Meta does not promise order: an event older than the state we hold must not undo it.
    return bool(
        event.occurred_at
        and template.status_changed_at
        and event.occurred_at < template.status_changed_at
    )


def _template_status(template: MessageTemplate, event: AssetEvent) -> bool:
    status = STATUS_EVENTS.get(text(event.value.get("event")).upper())
    if status is None or _is_stale(template, event):
        return False
    template.status = status
    template.status_reason = _status_reason(event.value) if status != Status.APPROVED else ""
    template.status_changed_at = event.occurred_at or timezone.now()
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    category = _category(event.value.get("message_template_category"))
    if status == Status.APPROVED and category:
        template.category = template.approved_category = category
        fields += ["category", "approved_category"]
    if status in DELETION_EVENTS:
        template.deleted_at_meta = True
        fields.append("deleted_at_meta")
    template.save(update_fields=fields)
    return True


def _status_reason(value: dict) -> str:
    """Meta's reason code, then its explanation when it sends one ("NONE" means none)."""
    parts = [text(value.get("reason"))]
    info = mapping(value.get("rejection_info") or value.get("other_info"))
    parts.append(text(info.get("reason") or info.get("description")))
    return " — ".join(p for p in parts if p and p != "NONE")


def _template_category(template: MessageTemplate, event: AssetEvent) -> bool:
    value = event.value
    if "correct_category" in value:
        # An impending change: Meta will recategorise later and says so again when it does.
        logger.info("template %s will move to category %s", template.pk, value.get("new_category"))
        return False
    new_category = _category(value.get("new_category"))
    if not new_category:
        return False
    if not template.approved_category:
        template.approved_category = _category(value.get("previous_category")) or template.category
    template.category = new_category
    template.save(update_fields=["category", "approved_category", "updated_at"])
    return True


def _template_quality(template: MessageTemplate, event: AssetEvent) -> bool:
    score = text(event.value.get("new_quality_score"), 16).upper()
    if score:
        template.quality_score = score
        template.save(update_fields=["quality_score", "updated_at"])
    if score in LOW_QUALITY:  # a warning before Meta pauses it: the campaigns using it say so
        ids = [template.pk]
        transaction.on_commit(
            lambda: template_quality_changed.send(sender=MessageTemplate, template_ids=ids)
        )
    return False


def _category(value) -> str:
    # The column is 32 wide; Meta's categories are single words (MARKETING, UTILITY, ...).
    return text(value, 32).upper()


def phone_event_apply(*, event: AssetEvent) -> PhoneNumber | None:
    """`phone_number_quality_update`: quality, messaging limit, and the throughput upgrade."""
    phone = _phone_for(event)
    if phone is None:
        logger.info("phone event for an unknown number: %s", event.value)
        return None
    value = event.value
    kind = text(value.get("event")).upper()
    if kind == "THROUGHPUT_UPGRADE":
        phone.throughput_level = HIGH_THROUGHPUT
        if not phone.max_mps_overridden:
            phone.max_mps = PhoneNumber.THROUGHPUT_MPS[HIGH_THROUGHPUT]
    if kind in PHONE_QUALITY_EVENTS:
        phone.quality_rating = PHONE_QUALITY_EVENTS[kind]
    limit = value.get("max_daily_conversations_per_business") or value.get("current_limit")
    if text(limit):
        phone.messaging_limit = text(limit, 32)
        portfolio_limit_set(account_id=phone.account_id, raw=limit)
    transaction.on_commit(lambda: phone_health_changed.send(sender=PhoneNumber))
    phone.save(
        update_fields=[
            "throughput_level",
            "max_mps",
            "quality_rating",
            "messaging_limit",
            "updated_at",
        ]
    )
    return phone


def portfolio_limit_set(*, account_id: int, raw) -> bool:
    """Stores the portfolio's messaging limit when Meta names a tier we understand."""
    understood, limit = WhatsAppAccount.limit_from_tier(raw)
    if not understood:
        return False
    WhatsAppAccount.objects.filter(pk=account_id).exclude(messaging_limit=limit).update(
        messaging_limit=limit
    )
    return True


def capability_event_apply(*, event: AssetEvent) -> bool:
    """`business_capability_update`: the portfolio's messaging limit moved to a new tier."""
    value = event.value
    raw = (
        value.get("max_daily_conversations_per_business")
        or value.get("max_messaging_tier")
        or value.get("max_daily_conversation_per_phone")
    )
    account = WhatsAppAccount.objects.filter(waba_id=event.waba_id).first()
    if account is None or not text(raw):
        return False
    changed = portfolio_limit_set(account_id=account.pk, raw=raw)
    transaction.on_commit(lambda: phone_health_changed.send(sender=WhatsAppAccount))
    return changed


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _phone_for(event: AssetEvent) -> PhoneNumber | None:
    # This webhook names the number only by its display form, which we store formatted.
    wanted = _digits(text(event.value.get("display_phone_number"), 64))
    if not wanted:
        return None
    phones = PhoneNumber.objects.filter(account__waba_id=event.waba_id).order_by("id")
    return next((p for p in phones if _digits(p.display_phone_number) == wanted), None)


def account_event_apply(*, event: AssetEvent) -> AccountRestriction | None:
    """`account_update`: a restriction, violation or ban marks the account restricted and is
    returned so the caller can stop that account's senders; a lifted ban marks it healthy."""
    account = WhatsAppAccount.objects.filter(waba_id=event.waba_id).first()
    kind = text(event.value.get("event")).upper()
    if account is None or kind not in RESTRICTING_ACCOUNT_EVENTS:
        return None
    if _is_lifted(kind, event.value):
        if account.health == WhatsAppAccount.Health.RESTRICTED:
            account.mark_health(WhatsAppAccount.Health.OK)
        return None
    reason = _restriction_reason(kind, event.value)
    account.mark_health(WhatsAppAccount.Health.RESTRICTED, reason)
    return AccountRestriction(account_id=account.pk, reason=reason)


def _is_lifted(kind: str, value: dict) -> bool:
    if kind == "DISABLED_UPDATE":
        return mapping(value.get("ban_info")).get("waba_ban_state") == BAN_LIFTED
    if kind == "ACCOUNT_RESTRICTION":
        return not value.get("restriction_info")
    return False


def _restriction_reason(kind: str, value: dict) -> str:
    if kind == "DISABLED_UPDATE":
        state = text(mapping(value.get("ban_info")).get("waba_ban_state"), 64) or "DISABLE"
        return f"Meta disabled this WhatsApp account (ban state {state})."
    if kind == "ACCOUNT_VIOLATION":
        violation = text(mapping(value.get("violation_info")).get("violation_type"), 200)
        return f"Meta reported a policy violation on this account ({violation or 'unspecified'})."
    kinds = ", ".join(
        text(r.get("restriction_type"), 200) for r in mappings(value.get("restriction_info"))
    )
    return f"Meta restricted this account: {kinds}."

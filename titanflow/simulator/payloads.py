"""Webhook deliveries in Meta's envelope: statuses, template and number events, inbound messages."""

import time
from dataclasses import dataclass

from titanflow.simulator.world import Phone, Template

TEMPLATE_EVENTS = {
    "APPROVED": "APPROVED",
    "REINSTATED": "APPROVED",
    "UNARCHIVED": "APPROVED",
    **{
        event: event
        for event in (
            "PENDING",
            "REJECTED",
            "PAUSED",
            "DISABLED",
            "FLAGGED",
            "IN_APPEAL",
            "PENDING_DELETION",
            "DELETED",
            "LIMIT_EXCEEDED",
            "ARCHIVED",
            "LOCKED",
        )
    },
}  # event → the template status it leaves behind
_ACCOUNT_EVENT_DEFAULTS = {
    "ACCOUNT_RESTRICTION": lambda now: {
        "restriction_info": [
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": now + 86400}
        ]
    },
    "DISABLED_UPDATE": lambda now: {
        "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": time.strftime("%B %d, %Y")}
    },
    "ACCOUNT_VIOLATION": lambda now: {"violation_info": {"violation_type": "SCAM"}},
}


@dataclass(slots=True)
class StatusNote:
    """One status of one accepted message, waiting for its moment to be posted."""

    phone: Phone
    wamid: str
    recipient_id: str
    status: str
    category: str
    conversation_id: str
    biz_opaque_callback_data: str | None = None
    error: dict | None = None
    links: tuple[str, ...] = ()  # short links the recipient may follow once it is read
    template: str = ""  # the template's name, for per-template click rates


def envelope(*entries: dict) -> dict:
    return {"object": "whatsapp_business_account", "entry": list(entries)}


def entry(waba_id: str, *changes: tuple[str, dict], timed: bool = False) -> dict:
    """An entry of `(field, value)` changes; Meta stamps `time` on account-level events only."""
    made = {"id": waba_id, "changes": [{"field": f, "value": v} for f, v in changes]}
    if timed:
        made = {"id": waba_id, "time": int(time.time()), "changes": made["changes"]}
    return made


def messages_value(phone: Phone, **parts) -> dict:
    metadata = {
        "display_phone_number": phone.display_digits,
        "phone_number_id": phone.phone_number_id,
    }
    return {"messaging_product": "whatsapp", "metadata": metadata, **parts}


def statuses_delivery(notes: list[StatusNote]) -> dict:
    """One delivery for many statuses: an entry per WABA, a change per phone number."""
    now = int(time.time())
    by_waba: dict[str, dict[str, tuple[Phone, list]]] = {}
    for note in notes:
        phones = by_waba.setdefault(note.phone.waba_id, {})
        phones.setdefault(note.phone.phone_number_id, (note.phone, []))[1].append(
            status_object(note, now)
        )
    return envelope(
        *(
            entry(waba, *(("messages", messages_value(p, statuses=s)) for p, s in phones.values()))
            for waba, phones in by_waba.items()
        )
    )


def status_object(note: StatusNote, now: int) -> dict:
    status = {
        "id": note.wamid,
        "status": note.status,
        "timestamp": str(now),
        "recipient_id": note.recipient_id,
    }
    if note.biz_opaque_callback_data is not None:
        status["biz_opaque_callback_data"] = note.biz_opaque_callback_data
    if note.error is not None:
        status["errors"] = [note.error]
        return status
    status["conversation"] = {"id": note.conversation_id, "origin": {"type": note.category}}
    if note.status == "sent":
        status["conversation"]["expiration_timestamp"] = str(now + 86400)
    status["pricing"] = _pricing(note.category)
    return status


def _pricing(category: str) -> dict:
    if category == "service":  # replies inside the customer-service window are free
        return {
            "billable": False,
            "pricing_model": "PMP",
            "type": "free_customer_service",
            "category": "service",
        }
    return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category}


def template_status_delivery(template: Template, event: str, reason: str | None) -> dict:
    value = {
        "event": event,
        "message_template_id": int(template.id) if template.id.isdigit() else template.id,
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": reason or "NONE",
        "message_template_category": template.category,
    }
    if event == "PAUSED":
        value["other_info"] = {
            "title": "FIRST_PAUSE",
            "description": "Your WhatsApp message template has been paused for 3 hours because "
            "it had issues.",
        }
    return envelope(entry(template.waba_id, ("message_template_status_update", value), timed=True))


# The older quality events name the quality they leave the number at.
QUALITY_EVENTS = {"FLAGGED": "RED", "UNFLAGGED": "GREEN"}


def capability_delivery(account) -> dict:
    value = {"max_daily_conversations_per_business": account.messaging_limit}
    return envelope(entry(account.waba_id, ("business_capability_update", value), timed=True))


def phone_quality_delivery(phone: Phone, event: str) -> dict:
    value = {
        "display_phone_number": phone.display_digits,
        "event": event,
        "current_limit": phone.messaging_limit,
        "max_daily_conversations_per_business": phone.messaging_limit,
    }
    return envelope(entry(phone.waba_id, ("phone_number_quality_update", value), timed=True))


def account_update_delivery(waba_id: str, event: str, details: dict) -> dict:
    defaults = _ACCOUNT_EVENT_DEFAULTS.get(event, lambda now: {})(int(time.time()))
    value = {"event": event, **defaults, **details}
    return envelope(entry(waba_id, ("account_update", value), timed=True))


def inbound_delivery(phone: Phone, *, wa_id: str, name: str, message: dict) -> dict:
    contacts = [{"profile": {"name": name}, "wa_id": wa_id}]
    value = messages_value(phone, contacts=contacts, messages=[message])
    return envelope(entry(phone.waba_id, ("messages", value)))


def user_preferences_delivery(phone: Phone, *, wa_id: str, value: str) -> dict:
    preference = {
        "wa_id": wa_id,
        "detail": f"User requested to {value} marketing messages",
        "category": "marketing_messages",
        "value": value,
        "timestamp": int(time.time()),
    }
    parts = messages_value(phone, user_preferences=[preference])
    return envelope(entry(phone.waba_id, ("user_preferences", parts)))

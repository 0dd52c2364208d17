"""Meta's delivery envelopes walked into the typed items each owning app applies.

Every entry, change, status and message is visited; a field or type TitanFlow does not use is
counted in `ignored` and otherwise left alone (the raw delivery stays stored for audit and replay).
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from campaigns.services.statuses import StatusUpdate
from inbox.services.ingest import IncomingMessage
from templates_app.services.events import AssetEvent

# Field name → the ParsedBatch list its events go to.
ASSET_FIELDS = {
    "message_template_status_update": "template_events",
    "template_category_update": "template_events",
    "message_template_quality_update": "template_events",
    "phone_number_quality_update": "phone_events",
    "account_update": "account_events",
}


class InvalidDelivery(ValueError):
    pass


@dataclass(frozen=True)
class Preference:
    wa_id: str
    value: str
    category: str
    phone_number_id: str
    timestamp: datetime


@dataclass
class ParsedBatch:
    statuses: list[StatusUpdate] = field(default_factory=list)
    messages: list[IncomingMessage] = field(default_factory=list)
    template_events: list[AssetEvent] = field(default_factory=list)
    phone_events: list[AssetEvent] = field(default_factory=list)
    account_events: list[AssetEvent] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)


def delivery_parse(body: bytes, *, into: ParsedBatch) -> None:
    """Adds everything in one delivery to `into`; raises InvalidDelivery for a non-JSON body."""
    try:
        data = orjson.loads(body)  # a third of json.loads' time on Meta's small deliveries
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDelivery(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidDelivery("not a JSON object")
    for entry in _dicts(data.get("entry")):
        waba_id = str(entry.get("id", ""))
        occurred_at = _time_or_none(entry.get("time"))
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if isinstance(value, dict):
                _change_parse(str(change.get("field", "")), value, waba_id, occurred_at, into)


def _change_parse(name, value, waba_id, occurred_at, into: ParsedBatch) -> None:
    if name == "messages":
        _messages_value_parse(value, into)
    elif name in ASSET_FIELDS:
        event = AssetEvent(waba_id=waba_id, field=name, value=value, occurred_at=occurred_at)
        getattr(into, ASSET_FIELDS[name]).append(event)
    elif name != "user_preferences":
        into.ignored[name or "(no field)"] += 1
    # Meta files user_preferences under its own field and, in some versions, under messages.
    if "user_preferences" in value:
        _preferences_parse(value, into)


def _messages_value_parse(value: dict, into: ParsedBatch) -> None:
    phone_number_id = str((value.get("metadata") or {}).get("phone_number_id", ""))
    for status in _dicts(value.get("statuses")):
        into.statuses.append(_status(status, phone_number_id))
    contacts = {str(c.get("wa_id", "")): c for c in _dicts(value.get("contacts"))}
    for message in _dicts(value.get("messages")):
        into.messages.append(_incoming(message, phone_number_id, contacts))


def _status(status: dict, phone_number_id: str) -> StatusUpdate:
    error = next(iter(_dicts(status.get("errors"))), {})
    return StatusUpdate(
        wamid=str(status.get("id", ""))[:128],
        status=str(status.get("status", "")),
        timestamp=_time(status.get("timestamp")),
        callback=str(status.get("biz_opaque_callback_data") or ""),
        recipient=str(status.get("recipient_id") or ""),
        phone_number_id=phone_number_id,
        error_code=_int(error.get("code")),
        error_title=str(error.get("title") or error.get("message") or ""),
        error_details=str((error.get("error_data") or {}).get("details") or ""),
    )


def _incoming(message: dict, phone_number_id: str, contacts: dict) -> IncomingMessage:
    contact = contacts.get(str(message.get("from") or "")) or next(iter(contacts.values()), {})
    user_id = str(contact.get("user_id") or message.get("from_user_id") or "")
    # Users who chat by username may come without a phone number: their business-scoped id
    # then keys the conversation.
    wa_id = str(message.get("from") or contact.get("wa_id") or user_id)
    kind = str(message.get("type") or "unknown")
    return IncomingMessage(
        phone_number_id=phone_number_id,
        wa_id=wa_id[:32],
        wamid=str(message.get("id") or "")[:128],
        type=kind,
        body=message_text(message, kind),
        timestamp=_time(message.get("timestamp")),
        user_id=user_id,
        contact_name=str((contact.get("profile") or {}).get("name") or ""),
        context_wamid=str((message.get("context") or {}).get("id") or ""),
        raw=message,
    )


def message_text(message: dict, kind: str) -> str:
    """The human-readable part of an incoming message of any type."""
    part = message.get(kind)
    if kind == "contacts" and isinstance(part, list):
        return ", ".join(str((c.get("name") or {}).get("formatted_name", "")) for c in _dicts(part))
    if not isinstance(part, dict):
        return ""
    if kind == "interactive":
        reply = part.get("button_reply") or part.get("list_reply") or part.get("nfm_reply") or {}
        return str(reply.get("title") or reply.get("body") or "")
    if kind == "edit":
        inner = part.get("message") or {}
        return message_text(inner, str(inner.get("type", "")))
    for key in ("body", "text", "caption", "emoji", "name", "address"):
        if part.get(key):
            return str(part[key])
    return ""


def _preferences_parse(value: dict, into: ParsedBatch) -> None:
    phone_number_id = str((value.get("metadata") or {}).get("phone_number_id", ""))
    for pref in _dicts(value.get("user_preferences")):
        into.preferences.append(
            Preference(
                wa_id=str(pref.get("wa_id") or ""),
                value=str(pref.get("value") or "").lower(),
                category=str(pref.get("category") or ""),
                phone_number_id=phone_number_id,
                timestamp=_time(pref.get("timestamp")),
            )
        )


def _dicts(items) -> list[dict]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _time_or_none(value) -> datetime | None:
    seconds = _int(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _time(value) -> datetime:
    return _time_or_none(value) or datetime.now(UTC)

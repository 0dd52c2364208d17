"""Meta's delivery envelopes walked into the typed items each owning app applies.

Every entry, change, status and message is visited; a field or type TitanFlow does not use is
counted in `ignored` and otherwise left alone (the raw delivery stays stored for audit and replay).
Parsing never raises on what a delivery holds: each value is checked for its type, range and the
column it goes to, and an item that cannot be read is noted in `skipped` and the rest go on.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from campaigns.services.statuses import StatusUpdate
from inbox.services.ingest import IncomingMessage, is_phone_digits
from templates_app.services.events import AssetEvent
from titanflow.whatsapp.values import clean, int32, integer, mapping, mappings, text

# Field name → the ParsedBatch list its events go to.
ASSET_FIELDS = {
    "message_template_status_update": "template_events",
    "template_category_update": "template_events",
    "message_template_quality_update": "template_events",
    "phone_number_quality_update": "phone_events",
    "account_update": "account_events",
    "business_capability_update": "capability_events",
}
# Timestamps outside these years are not Meta's clock; the item is stamped with ours instead.
EARLIEST_S = 946_684_800  # 2000-01-01
LATEST_S = 4_102_444_800  # 2100-01-01
# Column widths of what the items are written to.
WAMID_LENGTH = 128
WA_ID_LENGTH = 32
ID_LENGTH = 64
TEXT_LENGTH = 1000
# A JSON escape of NUL; real NUL bytes cannot appear inside a valid JSON string.
_NUL_ESCAPE = b"\\u0000"
_LONG_DIGITS = 40
_MAX_EDIT_DEPTH = 3


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
    capability_events: list[AssetEvent] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)


def delivery_load(body: bytes) -> dict:
    """The delivery as a dict whose strings Postgres accepts; raises InvalidDelivery."""
    try:
        data = orjson.loads(body)  # a third of json.loads' time on Meta's small deliveries
        dirty = _NUL_ESCAPE in body
    except (ValueError, UnicodeDecodeError):
        # orjson refuses what the stdlib reads: invalid UTF-8, lone surrogates, numbers
        # beyond a double. Read those slowly and clean them rather than lose the delivery.
        data, dirty = _load_leniently(body), True
    if not isinstance(data, dict):
        raise InvalidDelivery("not a JSON object")
    try:
        return clean(data) if dirty else data
    except RecursionError as exc:
        raise InvalidDelivery("nested too deeply") from exc


def _load_leniently(body: bytes):
    try:
        return json.loads(
            body.decode("utf-8", "replace"),
            parse_int=_lenient_int,
            parse_constant=lambda _: None,
        )
    except (ValueError, RecursionError) as exc:
        raise InvalidDelivery(f"not JSON: {exc}") from exc


def _lenient_int(digits: str):
    # Python refuses to convert more than 4,300 digits; no field of Meta's is a number that long.
    return digits if len(digits) > _LONG_DIGITS else int(digits)


def delivery_parse(body: bytes, *, into: ParsedBatch) -> list[str]:
    """Adds everything in one delivery to `into` and returns the notes on items it skipped;
    raises InvalidDelivery for a body that is not a JSON object."""
    return delivery_walk(delivery_load(body), into=into)


def delivery_walk(data: dict, *, into: ParsedBatch) -> list[str]:
    """delivery_parse for a delivery already loaded by `delivery_load`."""
    noted = len(into.skipped)
    for entry in _items(data, "entry", into):
        waba_id = entry_waba_id(entry)
        occurred_at = _time_or_none(entry.get("time"))
        for change in _items(entry, "changes", into):
            value = change.get("value")
            if isinstance(value, dict):
                _change_parse(text(change.get("field")), value, waba_id, occurred_at, into)
            else:
                into.skipped.append(f"change {text(change.get('field'))!r}: value not an object")
    return into.skipped[noted:]


def entry_waba_id(entry: dict) -> str:
    """The WABA an entry speaks for; the door and the processor must read it alike."""
    return text(entry.get("id"), ID_LENGTH)


def value_phone_number_id(value: dict) -> str:
    """The business number a change is about, or "" when it names none."""
    return text(mapping(value.get("metadata")).get("phone_number_id"), ID_LENGTH)


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
    phone_number_id = value_phone_number_id(value)
    statuses = _items(value, "statuses", into)
    into.statuses += _each(statuses, into, lambda s: _status(s, phone_number_id))
    contacts = {text(c.get("wa_id")): c for c in _items(value, "contacts", into)}
    messages = _items(value, "messages", into)
    into.messages += _each(messages, into, lambda m: _incoming(m, phone_number_id, contacts))


def _status(status: dict, phone_number_id: str) -> StatusUpdate:
    errors = status.get("errors")  # only failed statuses carry any: most skip the walk
    error = next(iter(mappings(errors)), {}) if errors else {}
    return StatusUpdate(
        wamid=text(status.get("id"), WAMID_LENGTH),
        status=text(status.get("status"), 16),
        timestamp=_time(status.get("timestamp")),
        callback=text(status.get("biz_opaque_callback_data"), 512),
        recipient=text(status.get("recipient_id"), WA_ID_LENGTH),
        phone_number_id=phone_number_id,
        error_code=int32(error.get("code")),
        error_title=text(error.get("title") or error.get("message"), TEXT_LENGTH),
        error_details=text(mapping(error.get("error_data")).get("details"), TEXT_LENGTH),
        **_pricing(status.get("pricing")),
    )


def _pricing(block) -> dict:
    pricing = mapping(block)
    billable = pricing.get("billable")
    return {
        "billable": billable if isinstance(billable, bool) else None,
        "pricing_category": text(pricing.get("category"), 32).upper(),
    }


def _incoming(message: dict, phone_number_id: str, contacts: dict) -> IncomingMessage:
    sender = text(message.get("from"))
    contact = mapping(contacts.get(sender) or next(iter(contacts.values()), {}))
    user_id = text(contact.get("user_id") or message.get("from_user_id"), 128)
    # Users who chat by username may come without a phone number: their business-scoped id
    # then keys the conversation.
    wa_id = sender or text(contact.get("wa_id")) or user_id
    kind = text(message.get("type"), 32) or "unknown"
    return IncomingMessage(
        phone_number_id=phone_number_id,
        wa_id=wa_id[:WA_ID_LENGTH],
        wamid=text(message.get("id"), WAMID_LENGTH),
        type=kind,
        body=message_text(message, kind),
        timestamp=_time(message.get("timestamp")),
        user_id=user_id,
        contact_name=text(mapping(contact.get("profile")).get("name"), 255),
        context_wamid=text(mapping(message.get("context")).get("id"), WAMID_LENGTH),
        raw=message,
    )


def message_text(message: dict, kind: str, depth: int = 0) -> str:
    """The human-readable part of an incoming message of any type."""
    part = message.get(kind)
    if kind == "contacts" and isinstance(part, list):
        names = (text(mapping(c.get("name")).get("formatted_name")) for c in mappings(part))
        return ", ".join(names)
    if not isinstance(part, dict):
        return ""
    if kind == "interactive":
        reply = part.get("button_reply") or part.get("list_reply") or part.get("nfm_reply")
        reply = mapping(reply)
        return text(reply.get("title") or reply.get("body"))
    if kind == "edit":
        inner = mapping(part.get("message"))
        # An edit names the edited message, never another edit; a chain is not Meta's.
        if depth >= _MAX_EDIT_DEPTH:
            return ""
        return message_text(inner, text(inner.get("type")), depth + 1)
    for key in ("body", "text", "caption", "emoji", "name", "address"):
        found = text(part.get(key))
        if found:
            return found
    return ""


def _preferences_parse(value: dict, into: ParsedBatch) -> None:
    phone_number_id = value_phone_number_id(value)
    prefs = _items(value, "user_preferences", into)
    for pref in _each(prefs, into, lambda p: _preference(p, phone_number_id)):
        if is_phone_digits(pref.wa_id):
            into.preferences.append(pref)
        elif pref.wa_id:  # none at all is a username user: nobody we could message by number
            into.skipped.append(f"user_preferences: wa_id {pref.wa_id[:20]!r} is no phone number")


def _preference(pref: dict, phone_number_id: str) -> Preference:
    return Preference(
        wa_id=text(pref.get("wa_id"), WA_ID_LENGTH),
        value=text(pref.get("value"), 16).lower(),
        category=text(pref.get("category"), 64),
        phone_number_id=phone_number_id,
        timestamp=_time(pref.get("timestamp")),
    )


def _each(items: list[dict], into: ParsedBatch, build) -> list:
    built = []
    for item in items:
        try:
            built.append(build(item))
        except Exception as exc:  # a shape nobody foresaw costs that item, not the delivery
            into.skipped.append(f"{type(exc).__name__}: {exc}"[:200])
    return built


def _items(parent: dict, key: str, into: ParsedBatch) -> list[dict]:
    """The objects listed under `key`; anything else there is noted as skipped."""
    items = parent.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        into.skipped.append(f"{key}: not a list")
        return []
    found = mappings(items)
    if len(found) < len(items):
        into.skipped.append(f"{key}: {len(items) - len(found)} items not objects")
    return found


def _time_or_none(value) -> datetime | None:
    seconds = integer(value)
    if seconds is None or not EARLIEST_S <= seconds <= LATEST_S:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _time(value) -> datetime:
    return _time_or_none(value) or datetime.now(UTC)

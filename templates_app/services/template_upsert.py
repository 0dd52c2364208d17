"""Templates from Meta's listing into the database, set-based, keeping what a listing cannot know.

One locked read of the account's rows, one `INSERT ... ON CONFLICT` per 1,000 templates, one
UPDATE for the templates Meta no longer lists. A template keeps its row across renames (matched
by Meta's id first, then by name and language), is never deleted, and a status a webhook set
after the listing was fetched is fresher than the listing, so it stays.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from templates_app.models import MessageTemplate, WhatsAppAccount
from templates_app.signals import template_status_changed
from titanflow.whatsapp.payloads import parse_slots
from titanflow.whatsapp.values import clean, fit, mapping, text

log = logging.getLogger(__name__)
UPSERT_BATCH = 1000
NAME_WIDTH = 512
LANGUAGE_WIDTH = 16
META_ID_WIDTH = 64
APPROVED = MessageTemplate.Status.APPROVED
UPDATE_FIELDS = [
    "meta_template_id",
    "category",
    "approved_category",
    "status",
    "status_reason",
    "status_changed_at",
    "quality_score",
    "components",
    "parameter_format",
    "slots",
    "unsupported_reason",
    "deleted_at_meta",
    "last_synced_at",
    "updated_at",
]


@dataclass
class ListingStored:
    ids: list[int]
    unsupported: int = 0
    gone: list[int] = field(default_factory=list)
    status_changed: list[int] = field(default_factory=list)
    # Listed templates refused, or stored with a value cut to its column's width.
    notes: list[str] = field(default_factory=list)


def templates_upsert(
    *, account: WhatsAppAccount, items: list[dict], listed_at: datetime | None = None
) -> int:
    """Insert or update templates from Graph `message_templates` items; returns the count."""
    with transaction.atomic():
        stored = _upsert(account, items, listed_at or timezone.now(), _known_templates(account))
        _announce(stored.status_changed)
    return len(stored.ids)


def templates_store_listing(
    *, account: WhatsAppAccount, items: list[dict], listed_at: datetime
) -> ListingStored:
    """Store Meta's complete listing: upsert every template, flag the ones it no longer has."""
    with transaction.atomic():
        known = _known_templates(account)
        stored = _upsert(account, items, listed_at, known)
        stored.gone = _mark_gone(known, keep=set(stored.ids))
        _announce(stored.status_changed + stored.gone)
    return stored


def _announce(template_ids: list[int]) -> None:
    # Senders re-check these templates at once rather than on their next cache expiry.
    if template_ids:
        ids = sorted(set(template_ids))
        transaction.on_commit(
            lambda: template_status_changed.send(sender=MessageTemplate, template_ids=ids)
        )


@dataclass(frozen=True)
class _Known:
    pk: int
    name: str
    language: str
    status: str
    status_changed_at: datetime | None
    status_reason: str
    approved_category: str
    deleted_at_meta: bool


def _known_templates(account: WhatsAppAccount) -> dict[str, _Known]:
    """The account's rows by "name|language" and by "id:<Meta id>", locked against webhooks."""
    names = [*_Known.__dataclass_fields__, "meta_template_id"]
    rows = (
        MessageTemplate.objects.select_for_update(no_key=True)
        .filter(account=account)
        .order_by("id")
        .values(*names)
    )
    known = {}
    for row in rows:
        meta_id = row.pop("meta_template_id")
        entry = _Known(**row)
        known[f"{entry.name}|{entry.language}"] = entry
        if meta_id:
            known[f"id:{meta_id}"] = entry
    return known


def _upsert(account, items: list[dict], listed_at, known: dict[str, _Known]) -> ListingStored:
    notes: list[str] = []
    items = [clean(item) for item in items if _identified(item, notes)]
    # One statement cannot update a row twice; the last listing of a name and language wins.
    items = list({(i["name"], i["language"]): i for i in items}.values())
    _apply_renames(known, items)
    now = timezone.now()
    rows = [_template_row(account, item, known, listed_at, now, notes) for item in items]
    MessageTemplate.objects.bulk_create(
        rows,
        batch_size=UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=["account", "name", "language"],
        update_fields=UPDATE_FIELDS,
    )
    return ListingStored(
        ids=[row.pk for row in rows],
        unsupported=sum(1 for row in rows if row.unsupported_reason),
        status_changed=[row.pk for row in rows if _sendability_changed(row, known)],
        notes=notes,
    )


def _identified(item, notes: list[str]) -> bool:
    """Named by a name and a language that fit their columns: they are the row's identity,
    so cutting them could merge two templates; such a listing is refused instead."""
    item = mapping(item)
    name, language = text(item.get("name")), text(item.get("language"))
    if name and language and len(name) <= NAME_WIDTH and len(language) <= LANGUAGE_WIDTH:
        item["name"], item["language"] = name, language  # a number as name reads as its text
        return True
    log.warning("template listed without a usable name or language, skipped: %s", item.get("id"))
    notes.append(f"a template listed without a usable name or language ({name[:40]!r})")
    return False


def _sendability_changed(row: MessageTemplate, known: dict[str, _Known]) -> bool:
    entry = known.get(f"{row.name}|{row.language}")
    return entry is not None and (
        entry.status != row.status
        or entry.deleted_at_meta
        or entry.approved_category != row.approved_category
    )


def _mark_gone(known: dict[str, _Known], *, keep: set[int]) -> list[int]:
    gone = sorted({e.pk for e in known.values() if e.pk not in keep and not e.deleted_at_meta})
    if gone:
        MessageTemplate.objects.filter(pk__in=gone).update(
            deleted_at_meta=True, updated_at=timezone.now()
        )
    return gone


def _apply_renames(known: dict[str, _Known], items: list[dict]) -> None:
    # Rare, so one UPDATE each; afterwards the upsert matches every row by name and language.
    for item in items:
        entry = known.get(f"id:{_meta_id(item)}")
        if entry is None or (entry.name, entry.language) == (item["name"], item["language"]):
            continue
        if f"{item['name']}|{item['language']}" in known:
            continue  # that name belongs to another row; the upsert updates that one instead
        MessageTemplate.objects.filter(pk=entry.pk).update(
            name=item["name"], language=item["language"]
        )
        known.pop(f"{entry.name}|{entry.language}", None)
        renamed = _Known(**{**entry.__dict__, "name": item["name"], "language": item["language"]})
        known[f"{item['name']}|{item['language']}"] = known[f"id:{_meta_id(item)}"] = renamed


def _meta_id(item: dict) -> str:
    # Wider than its column it is not Meta's id; the row is still matched by name.
    found = text(item.get("id"))
    return found if len(found) <= META_ID_WIDTH else ""


def _template_row(account, item: dict, known: dict[str, _Known], listed_at, now, notes):
    def fitted(name: str, value, width: int) -> str:
        return fit(value, width, label=f"template {item['name']}: {name}", notes=notes)

    entry = known.get(f"{item['name']}|{item['language']}")
    status, reason, changed_at = _status(item, entry, listed_at)
    category = fitted("category", item.get("category"), 32).upper()
    parameter_format = fitted("parameter_format", item.get("parameter_format"), 12).upper()
    components = item.get("components") or []
    slots, unsupported = _slots(components, parameter_format or "POSITIONAL")
    return MessageTemplate(
        account=account,
        meta_template_id=_meta_id(item),
        name=item["name"],
        language=item["language"],
        category=category,
        approved_category=_approved_category(status, category, entry),
        status=fitted("status", status, 20),
        status_reason=reason,
        status_changed_at=changed_at,
        quality_score=fitted("quality_score", _quality(item.get("quality_score")), 16),
        components=components,
        parameter_format=parameter_format or "POSITIONAL",
        slots=slots,
        unsupported_reason=unsupported,
        deleted_at_meta=False,
        last_synced_at=now,
        updated_at=now,
    )


def _status(item: dict, entry: _Known | None, listed_at) -> tuple[str, str, datetime | None]:
    status = text(item.get("status")).upper() or MessageTemplate.Status.PENDING
    reason = text(item.get("rejected_reason"))
    reason = "" if reason.upper() == "NONE" else reason
    if entry is None:
        return status, reason, listed_at
    if entry.status_changed_at and entry.status_changed_at > listed_at:
        # A webhook moved it after this listing was fetched: the listing is the older news.
        return entry.status, entry.status_reason, entry.status_changed_at
    if entry.status == status:
        return status, reason or entry.status_reason, entry.status_changed_at
    # Stamped with the listing's time, not now, so a webhook from between the two still applies.
    return status, reason, listed_at


def _slots(components: list, parameter_format: str) -> tuple[list[dict], str]:
    try:
        return [slot.to_dict() for slot in parse_slots(components, parameter_format)], ""
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # UnsupportedTemplateError is a ValueError; malformed definitions must not stop a sync.
        return [], str(exc) or "TitanFlow cannot read this template's variables."


def _approved_category(status: str, category: str, entry: _Known | None) -> str:
    # Remembered at approval: a later category change under the same approval must not be
    # taken as approved (Meta bills and judges the new category differently).
    if status == APPROVED and (entry is None or entry.status != APPROVED):
        return category
    if entry and entry.approved_category:
        return entry.approved_category
    return category if status == APPROVED else ""


def _quality(raw) -> str:
    if isinstance(raw, dict):
        raw = raw.get("score")
    return text(raw)

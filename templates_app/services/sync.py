"""Bring what Meta knows about a WhatsApp account (its numbers and templates) into the database.

Everything here takes Graph-API-shaped dicts, so the sync, the demo loader and the tests share one
path. Numbers are upserted here, templates in `template_upsert`; both write set-based.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from django.db import close_old_connections, connection
from django.utils import timezone

from templates_app.models import PhoneNumber, WhatsAppAccount
from templates_app.services.events import portfolio_limit_set
from templates_app.services.template_upsert import templates_store_listing
from templates_app.services.template_upsert import templates_upsert as templates_upsert  # public
from titanflow.whatsapp.client import graph_client
from titanflow.whatsapp.errors import MetaAPIError, Scope, TransportError
from titanflow.whatsapp.values import clean, fit, mapping, text

log = logging.getLogger(__name__)
PHONE_FIELDS = (
    "id,display_phone_number,verified_name,quality_rating,status,throughput,"
    "whatsapp_business_manager_messaging_limit"
)
TEMPLATE_FIELDS = (
    "id,name,status,category,language,components,parameter_format,quality_score,rejected_reason"
)
SYNC_PARTS = ("phones", "templates")
PAGE_SIZE = 100
MAX_PARALLEL_ACCOUNTS = 4
SHOWN_NOTES = 3
PHONE_ID_WIDTH = 64
TOKEN_INVALID_SENTENCE = (
    "Meta says the access token is invalid or expired. Paste a new token to resume syncing "
    "and sending."
)


class ProgressReporter(Protocol):
    """Anything told how a sync is going: the cache entry pages poll, or a command's output."""

    def update(self, **fields) -> None: ...


class AccountVerificationError(Exception):
    """The token check failed; the message is a sentence a marketer can act on."""


@dataclass
class SyncResult:
    account_id: int
    waba_id: str
    phones: int = 0
    templates: int = 0
    deleted: int = 0
    unsupported: int = 0
    error: str = ""
    retry_after: float | None = None  # set when Meta asked us to come back later
    parts: tuple[str, ...] = SYNC_PARTS
    # Listed items stored cut to their columns' widths, or refused; the rest is stored.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def summary(self) -> str:
        if self.error:
            return self.error
        parts = []
        if "phones" in self.parts:
            parts.append(f"{self.phones} numbers")
        if "templates" in self.parts:
            parts.append(
                f"{self.templates} templates ({self.deleted} gone from Meta,"
                f" {self.unsupported} not sendable by TitanFlow)"
            )
        summary = ", ".join(parts)
        if self.notes:
            shown = "; ".join(self.notes[:SHOWN_NOTES])
            more = (
                f" and {len(self.notes) - SHOWN_NOTES} more"
                if len(self.notes) > SHOWN_NOTES
                else ""
            )
            summary += f". Not stored as listed: {shown}{more}"
        return summary


# -- the token check ---------------------------------------------------------------------------


def account_verify_token(*, waba_id: str, access_token: str) -> dict:
    """Ask Meta for the account with this token: its {"id", "name"}, or a refusal explained."""
    # It goes into an HTTP header, which cannot carry other characters (a 500 before Meta).
    if not access_token.isascii() or not access_token.isprintable() or " " in access_token:
        raise AccountVerificationError(
            "An access token is letters, digits and punctuation only: paste it as Meta shows it."
        )
    try:
        return graph_client(access_token).get(waba_id, {"fields": "id,name"})
    except TransportError as exc:
        raise AccountVerificationError(
            "TitanFlow could not reach Meta to check the token. Try again in a minute."
        ) from exc
    except MetaAPIError as exc:
        raise AccountVerificationError(_refusal_sentence(exc, waba_id)) from exc


def _refusal_sentence(exc: MetaAPIError, waba_id: str) -> str:
    if exc.code == 190:
        return "Meta refused the check: the access token is invalid or expired."
    if exc.code == 100:
        return (
            f"Meta does not know WhatsApp account {waba_id}, or this token cannot see it "
            f"({exc.title})."
        )
    if exc.info.scope == Scope.THROTTLE:
        return "Meta is limiting API calls for this app right now. Try again in a few minutes."
    return f"Meta refused the check: {exc}."


def account_create(
    *, waba_id: str, access_token: str, name: str = "", app_secret: str = ""
) -> WhatsAppAccount:
    """Check the token against Meta, then store the account (the token encrypted)."""
    found = account_verify_token(waba_id=waba_id, access_token=access_token)
    return WhatsAppAccount.objects.create(
        waba_id=waba_id,
        name=name or str(found.get("name") or waba_id),
        access_token=access_token,
        app_secret=app_secret,
    )


# -- syncing -----------------------------------------------------------------------------------


def account_sync(
    *,
    account: WhatsAppAccount,
    progress: ProgressReporter | None = None,
    parts: tuple[str, ...] = SYNC_PARTS,
) -> SyncResult:
    """Sync the account's phone numbers, then its templates (or only the `parts` named).

    A refused token marks the account and is reported in the result. Throttling and transient
    failures raise `MetaAPIError` so the caller (a Celery task) can retry later.
    """
    try:
        return _account_sync(account, progress, parts)
    except MetaAPIError:
        raise
    except Exception as exc:
        # Said at once: otherwise the page shows "running" until the entry goes stale.
        _report(progress, state="failed", message=f"The sync stopped on an error ({exc!r:.200}).")
        raise


def _account_sync(account, progress, parts) -> SyncResult:
    client = graph_client(account.access_token)
    result = SyncResult(account_id=account.pk, waba_id=account.waba_id, parts=parts)
    templates = None
    try:
        if "phones" in parts:
            _sync_phones(client, account, result, progress)
        if "templates" in parts:
            listed_at = timezone.now()
            templates = _fetch_templates(client, account, progress)
    except MetaAPIError as exc:
        if exc.info.scope in (Scope.THROTTLE, Scope.TRANSIENT):
            raise
        result.error = _account_refused(account, exc)
        _report(progress, state="failed", message=result.error)
        return result
    if templates is not None:
        _store_templates(account, templates, listed_at, result)
    _account_synced(account)
    _report(
        progress,
        state="done",
        templates=result.templates,
        deleted=result.deleted,
        message=f"Synced {result.summary()}.",
    )
    return result


def _sync_phones(client, account, result: SyncResult, progress) -> None:
    _report(progress, state="running", message="Fetching phone numbers…")
    items = list(client.iter_pages(f"{account.waba_id}/phone_numbers", _params(PHONE_FIELDS)))
    result.phones = phones_upsert(account=account, items=items, notes=result.notes)
    _report(progress, phones=result.phones, message=f"Stored {result.phones} numbers.")


def _params(fields: str) -> dict:
    return {"fields": fields, "limit": str(PAGE_SIZE)}


def _fetch_templates(client, account: WhatsAppAccount, progress) -> list:
    _report(progress, state="running", message="Fetching templates…")
    items = []
    for item in client.iter_pages(f"{account.waba_id}/message_templates", _params(TEMPLATE_FIELDS)):
        items.append(item)
        if progress and len(items) % PAGE_SIZE == 0:
            progress.update(templates=len(items), message=f"Fetched {len(items)} templates…")
    return items


def _store_templates(account, items: list[dict], listed_at, result: SyncResult) -> None:
    stored = templates_store_listing(account=account, items=items, listed_at=listed_at)
    result.templates, result.unsupported = len(stored.ids), stored.unsupported
    result.deleted = len(stored.gone)
    result.notes += stored.notes


def _account_refused(account: WhatsAppAccount, exc: MetaAPIError) -> str:
    if exc.code == 190:
        account.mark_health(WhatsAppAccount.Health.TOKEN_INVALID, TOKEN_INVALID_SENTENCE)
        return TOKEN_INVALID_SENTENCE
    return f"Meta refused the sync: {exc.info.meaning} ({exc})"


def _account_synced(account: WhatsAppAccount) -> None:
    # A successful listing proves the token works again; a restriction is Meta's to lift.
    now = timezone.now()
    fields = {"last_synced_at": now, "updated_at": now}
    if account.health == WhatsAppAccount.Health.TOKEN_INVALID:
        fields |= {"health": WhatsAppAccount.Health.OK, "health_detail": ""}
    WhatsAppAccount.objects.filter(pk=account.pk).update(**fields)
    for name, value in fields.items():
        setattr(account, name, value)


def _report(progress: ProgressReporter | None, **fields) -> None:
    if progress is not None:
        progress.update(**fields)


def accounts_sync(
    *,
    accounts: list[WhatsAppAccount],
    parts: tuple[str, ...] = SYNC_PARTS,
    max_workers: int = MAX_PARALLEL_ACCOUNTS,
    progress_for: Callable[[WhatsAppAccount], ProgressReporter] | None = None,
    on_done: Callable[[SyncResult], None] | None = None,
) -> list[SyncResult]:
    """Sync several accounts at once, at most `max_workers` in parallel (Meta limits per app)."""
    if not accounts:
        return []
    workers = max(1, min(max_workers, MAX_PARALLEL_ACCOUNTS, len(accounts)))
    run = partial(_sync_in_thread, parts=parts, progress_for=progress_for)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync") as pool:
        results = []
        for result in pool.map(run, accounts):
            results.append(result)
            if on_done:
                on_done(result)
    return results


def _sync_in_thread(account: WhatsAppAccount, *, parts, progress_for) -> SyncResult:
    close_old_connections()
    progress = progress_for(account) if progress_for else None
    try:
        return account_sync(account=account, progress=progress, parts=parts)
    except MetaAPIError as exc:
        return SyncResult(
            account_id=account.pk,
            waba_id=account.waba_id,
            error=f"Meta asked to retry later: {exc}",
            retry_after=exc.retry_after or exc.info.retry_after_s or 60.0,
        )
    except Exception as exc:  # one account's surprise must not stop the others' syncs
        log.exception("sync of account %s failed", account.waba_id)
        return SyncResult(account_id=account.pk, waba_id=account.waba_id, error=repr(exc))
    finally:
        connection.close()  # each worker thread opened its own connection


# -- phone numbers -----------------------------------------------------------------------------


def phones_upsert(
    *, account: WhatsAppAccount, items: list[dict], notes: list[str] | None = None
) -> int:
    """Insert or update numbers from Graph `phone_numbers` items; returns how many.

    A value wider than its column is cut to fit and a number without a usable id is refused,
    each said in `notes`, so one odd listing never stops the sync of the others."""
    notes = [] if notes is None else notes
    items = [clean(item) for item in items if _phone_identified(item, notes)]
    if not items:
        return 0
    lowered = dict(
        PhoneNumber.objects.filter(
            phone_number_id__in=[_phone_key(item) for item in items], max_mps_overridden=True
        ).values_list("phone_number_id", "max_mps")
    )
    now = timezone.now()
    rows = [_phone_row(account, item, lowered, now, notes) for item in _unique(items, _phone_key)]
    PhoneNumber.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["phone_number_id"],
        update_fields=[
            "account",
            "display_phone_number",
            "verified_name",
            "quality_rating",
            "status",
            "throughput_level",
            "messaging_limit",
            "max_mps",
            "last_synced_at",
            "updated_at",
        ],
    )
    _portfolio_limit_sync(account, rows)
    return len(rows)


def _portfolio_limit_sync(account: WhatsAppAccount, rows: list[PhoneNumber]) -> None:
    # The limit belongs to the business portfolio: every number lists the same one.
    for row in rows:
        if row.messaging_limit and portfolio_limit_set(
            account_id=account.pk, raw=row.messaging_limit
        ):
            return


def _phone_identified(item, notes: list[str]) -> bool:
    phone_number_id = text(item.get("id")) if isinstance(item, dict) else ""
    if phone_number_id and len(phone_number_id) <= PHONE_ID_WIDTH:
        return True
    # Cutting an id could make it another number's: the row is refused instead.
    notes.append(f"a number listed without a usable id ({phone_number_id[:24]!r})")
    return False


def _phone_key(item: dict) -> str:
    return text(item.get("id"))


def _phone_row(account, item: dict, lowered: dict[str, int], now, notes) -> PhoneNumber:
    phone_number_id = _phone_key(item)

    def fitted(name: str, value, width: int) -> str:
        return fit(value, width, label=f"number {phone_number_id}: {name}", notes=notes)

    level = text(mapping(item.get("throughput")).get("level")).upper() or "STANDARD"
    ceiling = PhoneNumber.THROUGHPUT_MPS.get(level, PhoneNumber.THROUGHPUT_MPS["STANDARD"])
    # Staff lowered this number's rate: keep their choice, but never above what Meta allows.
    max_mps = min(lowered[phone_number_id], ceiling) if phone_number_id in lowered else ceiling
    return PhoneNumber(
        account=account,
        phone_number_id=phone_number_id,
        display_phone_number=fitted("display_phone_number", item.get("display_phone_number"), 32),
        verified_name=fitted("verified_name", item.get("verified_name"), 200),
        quality_rating=fitted("quality_rating", item.get("quality_rating") or "NA", 16).upper(),
        status=fitted("status", item.get("status"), 32),
        throughput_level=fitted("throughput level", level, 16),
        messaging_limit=fitted("messaging limit", _messaging_limit(item), 32),
        max_mps=max_mps,
        max_mps_overridden=phone_number_id in lowered,
        last_synced_at=now,
        updated_at=now,
    )


def _messaging_limit(item: dict) -> str:
    # `whatsapp_business_manager_messaging_limit` replaces the deprecated `messaging_limit_tier`.
    limit = item.get("whatsapp_business_manager_messaging_limit") or item.get(
        "messaging_limit_tier"
    )
    if isinstance(limit, dict):
        limit = limit.get("current_limit") or limit.get("limit") or limit.get("tier")
    return text(limit)


def _unique(items: list[dict], key: Callable[[dict], object]) -> list[dict]:
    # One statement cannot update a row twice; the last listing of an entry wins.
    return list({key(item): item for item in items}.values())

"""The import itself: stream the file straight into the campaign's contacts with COPY, inside
one transaction, so a failure leaves no partial list and no reader ever sees half of one.

Measured on 2 cores: Python parses and normalises a row in ~20 µs while Postgres spends ~40 µs
inserting it (indexes and foreign-key checks), so COPY streams while Python parses and the two
run side by side. Progress goes out on a second connection, visible during the transaction."""

import json
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from campaigns.counters import campaign_recount
from campaigns.importing.phones import normalize_phone
from campaigns.importing.readers import ImportFileError, Table, open_table
from campaigns.importing.variables import (
    SKIP_REASONS,
    contacts_mark_missing_variables,
    skip_counts,
)
from campaigns.models import Campaign

logger = logging.getLogger(__name__)

CHUNK_ROWS = 25_000
_LOCK_CLASS = 4004
_COPY_SQL = (
    "COPY campaigns_contact (campaign_id, row_number, phone, name, variables, state,"
    " skip_reason, attempts, payload, last_error) FROM STDIN"
)


class _Superseded(Exception):
    """A newer upload or a cancel replaced this import while it ran."""


def import_run(*, campaign_id: int, on_progress: Callable[[int, int], None] | None = None) -> None:
    """Imports the campaign's uploaded file; safe to run twice (one run at a time, and a run only
    starts on a campaign still marked importing). `on_progress(done, estimate)` is called after
    each chunk."""
    with _import_lock(campaign_id) as acquired:
        if not acquired:
            return
        campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.IMPORTING).first()
        if campaign is None:
            return
        try:
            _import(campaign, on_progress)
        except _Superseded:
            return
        except ImportFileError as exc:
            _fail(campaign, str(exc))
        except FileNotFoundError:
            _fail(campaign, "The uploaded file is gone; upload the list again.")
        except Exception:
            logger.exception("import of campaign %s failed", campaign_id)
            _fail(campaign, "The import stopped on an unexpected error; retry it.")


class _import_lock:
    """A session-level advisory lock: a second worker running the same import returns at once."""

    def __init__(self, campaign_id: int):
        self.key = (_LOCK_CLASS, campaign_id)

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", self.key)
            self.acquired = cursor.fetchone()[0]
        return self.acquired

    def __exit__(self, *exc_info):
        if self.acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", self.key)


class _Progress:
    """Writes import_rows_done on its own autocommit connection: the import's transaction stays
    open until the end, and the page's progress bar must move before that."""

    def __init__(self, campaign_id: int, estimate: int, callback):
        self.campaign_id, self.estimate, self.callback = campaign_id, estimate, callback
        self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def __call__(self, done: int) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "UPDATE campaigns_campaign SET import_rows_done = %s,"
                " import_rows_estimate = GREATEST(import_rows_estimate, %s) WHERE id = %s",
                [done, done, self.campaign_id],
            )
        if self.callback:
            self.callback(done, max(self.estimate, done))

    def close(self) -> None:
        self.connection.close()


def _import(campaign: Campaign, on_progress) -> None:
    source = campaign.source_file.name
    with open_table(campaign.source_file.path, campaign.source_name) as table:
        indexes = _column_indexes(campaign, table.header)
        Campaign.objects.filter(pk=campaign.pk).update(import_rows_estimate=table.estimate)
        progress = _Progress(campaign.pk, table.estimate, on_progress)
        try:
            with transaction.atomic():
                _prepare(campaign)
                rows = _copy_contacts(campaign, table, indexes, progress)
                _mark_skips(campaign)
                locked = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
                if locked.status != Campaign.Status.IMPORTING or locked.source_file.name != source:
                    raise _Superseded
                _finish(locked, rows=rows, details=table.details, header=table.header)
        finally:
            progress.close()


def _column_indexes(campaign: Campaign, header: list[str]) -> tuple[int, int | None]:
    if not campaign.phone_column or campaign.phone_column not in header:
        raise ImportFileError(
            "No phone column: pick the column that holds the phone numbers "
            f"(the file has: {', '.join(header[:20])})."
        )
    name_index = header.index(campaign.name_column) if campaign.name_column in header else None
    return header.index(campaign.phone_column), name_index


def _prepare(campaign: Campaign) -> None:
    with connection.cursor() as cursor:
        # Measured: JIT compilation costs more than it saves on these one-off statements, and
        # foreign-key checks run during COPY (on the server's core, beside our parsing) rather
        # than all at commit.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DELETE FROM campaigns_contact WHERE campaign_id = %s", [campaign.pk])


def _copy_contacts(campaign: Campaign, table: Table, indexes: tuple, progress: _Progress) -> int:
    records = _records(campaign.pk, table, *indexes, campaign.region)
    done = 0
    while True:
        copied = _copy_chunk(records, CHUNK_ROWS)
        if not copied:
            return done
        done += copied
        progress(done)


def _copy_chunk(records, limit: int) -> int:
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(_COPY_SQL) as copy:
        for record in records:
            copy.write_row(record)
            count += 1
            if count == limit:
                break
    return count


def _records(
    campaign_id: int, table: Table, phone_index: int, name_index: int | None, region: str
) -> Iterable[tuple]:
    header = table.header
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for row_number, row in enumerate(table.rows, start=2):
        if not any(row):
            continue
        row = [cell.strip() for cell in row]
        raw_phone = row[phone_index] if phone_index < len(row) else ""
        phone = normalize_phone(raw_phone, region)
        name = row[name_index][:255] if name_index is not None and name_index < len(row) else ""
        variables = dumps(dict(zip(header, row, strict=False)))
        if "\\u0000" in variables:
            variables = variables.replace("\\u0000", "")  # Postgres jsonb refuses NUL
        name = name.replace("\x00", "")
        if phone is None:
            state, reason, phone = "skipped", "invalid_phone", raw_phone[:20].replace("\x00", "")
        else:
            state, reason = "pending", ""
        yield campaign_id, row_number, phone, name, variables, state, reason, 0, "", ""


def _mark_skips(campaign: Campaign) -> None:
    since = timezone.now() - timedelta(days=campaign.dedup_days) if campaign.dedup_days else None
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATES_SQL, {"campaign": campaign.pk})
        cursor.execute(_OPTED_OUT_SQL, {"campaign": campaign.pk})
        if since:
            cursor.execute(_RECENT_SQL, {"campaign": campaign.pk, "since": since})


# Reasons in priority order (an invalid number says nothing about duplicates); the first
# occurrence of a phone in the file is the one kept. Each statement touches only the rows it
# skips.
_SKIP = "SET state = 'skipped', skip_reason = '{reason}'"
# No join of the campaign's rows with themselves: on a freshly loaded table (no statistics, and
# this server runs autovacuum off) the planner guessed one row per side and nested the loops,
# 126 s for 20,000 rows. One sort ranks each phone's rows, and the later ones are fetched by
# primary key (an index scan on `id = ANY(...)`, never a filter): 0.04 s for the same rows.
_DUPLICATES_SQL = f"""UPDATE campaigns_contact {_SKIP.format(reason="duplicate_in_file")}
WHERE id = ANY(ARRAY(
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY phone ORDER BY row_number, id) AS nth
        FROM campaigns_contact WHERE campaign_id = %(campaign)s AND state = 'pending'
    ) ranked
    WHERE nth > 1))"""
_OPTED_OUT_SQL = f"""UPDATE campaigns_contact c {_SKIP.format(reason="opted_out")}
FROM campaigns_optout o
WHERE c.campaign_id = %(campaign)s AND c.state = 'pending' AND o.phone = c.phone AND o.active"""
_RECENT_SQL = f"""UPDATE campaigns_contact c {_SKIP.format(reason="recently_messaged")}
WHERE c.campaign_id = %(campaign)s AND c.state = 'pending' AND EXISTS (
    SELECT 1 FROM campaigns_message m WHERE m.recipient = c.phone AND m.sent_at >= %(since)s)"""


def _finish(campaign: Campaign, *, rows: int, details: dict, header: list[str]) -> None:
    contacts_mark_missing_variables(campaign=campaign)
    counts = skip_counts(campaign=campaign)
    campaign.import_report = {
        "rows": rows,
        "valid": rows - sum(counts.values()),
        "skipped": {reason: counts.get(reason, 0) for reason in SKIP_REASONS},
        "file": details,
        "phone_column": campaign.phone_column,
        "name_column": campaign.name_column,
        "finished_at": timezone.now().isoformat(),
    }
    campaign.columns = header
    campaign.import_rows_done = rows
    campaign.import_error = ""
    campaign.status = Campaign.Status.READY
    campaign.save(update_fields=_FINISH_FIELDS)
    truth = campaign_recount(campaign_id=campaign.pk)
    campaign.total_count, campaign.skipped_count = truth["total"], truth["skipped"]


_FINISH_FIELDS = [
    "import_report",
    "columns",
    "import_rows_done",
    "import_error",
    "status",
    "updated_at",
]


def _fail(campaign: Campaign, reason: str) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.FAILED, import_error=reason, updated_at=timezone.now()
    )

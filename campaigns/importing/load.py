"""The import itself: stream the file into a session-private staging table with COPY, then move
it into the campaign's contacts in one transaction, so a failure leaves no partial list."""

import json
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

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
_STAGE = "titanflow_import_stage"


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
        except ImportFileError as exc:
            _fail(campaign, str(exc))
        except Exception:
            logger.exception("import of campaign %s failed", campaign_id)
            _fail(campaign, "The import stopped on an unexpected error; retry it.")
        finally:
            _drop_stage()


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


def _import(campaign: Campaign, on_progress) -> None:
    source = campaign.source_file.name
    with open_table(campaign.source_file.path, campaign.source_name) as table:
        phone_index, name_index = _column_indexes(campaign, table.header)
        Campaign.objects.filter(pk=campaign.pk).update(import_rows_estimate=table.estimate)
        _create_stage()
        rows = _stage_rows(campaign.pk, table, (phone_index, name_index), on_progress)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None or locked.status != Campaign.Status.IMPORTING:
            return
        if locked.source_file.name != source:
            return  # a newer upload replaced this file while we read it; its own run wins
        _replace_contacts(locked)
        _finish(locked, rows=rows, details=table.details, header=table.header)


def _column_indexes(campaign: Campaign, header: list[str]) -> tuple[int, int | None]:
    if not campaign.phone_column or campaign.phone_column not in header:
        raise ImportFileError(
            "No phone column: pick the column that holds the phone numbers "
            f"(the file has: {', '.join(header[:20])})."
        )
    name_index = header.index(campaign.name_column) if campaign.name_column in header else None
    return header.index(campaign.phone_column), name_index


def _create_stage() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        cursor.execute(
            f"CREATE TEMP TABLE {_STAGE} (row_number integer, phone text, name text,"
            " variables jsonb, reason text)"
        )


def _drop_stage() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")


def _stage_rows(campaign_id: int, table: Table, indexes: tuple, on_progress) -> int:
    records = _records(table, *indexes, settings.DEFAULT_PHONE_REGION)
    done = 0
    while True:
        copied = _copy_chunk(records, CHUNK_ROWS)
        if not copied:
            return done
        done += copied
        # Progress for the page's bar, committed on its own so readers see it during the import.
        Campaign.objects.filter(pk=campaign_id).update(import_rows_done=done)
        if on_progress:
            on_progress(done, table.estimate)


def _copy_chunk(records, limit: int) -> int:
    count = 0
    # One transaction per chunk (a savepoint inside an outer one) so an error while streaming
    # leaves the connection usable for recording the failure.
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            f"COPY {_STAGE} (row_number, phone, name, variables, reason) FROM STDIN"
        ) as copy:
            for record in records:
                copy.write_row(record)
                count += 1
                if count == limit:
                    break
    return count


def _records(
    table: Table, phone_index: int, name_index: int | None, region: str
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
        if phone is None:
            yield row_number, raw_phone[:20], name.replace("\x00", ""), variables, "invalid_phone"
        else:
            yield row_number, phone, name.replace("\x00", ""), variables, ""


def _replace_contacts(campaign: Campaign) -> None:
    since = timezone.now() - timedelta(days=campaign.dedup_days) if campaign.dedup_days else None
    with connection.cursor() as cursor:
        # Measured: JIT compilation cost more than it saved on these one-off statements.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for statement in _SKIP_SQL:
            cursor.execute(statement.format(stage=_STAGE))
        if since:
            cursor.execute(_RECENT_SQL.format(stage=_STAGE), [since])
        cursor.execute("DELETE FROM campaigns_contact WHERE campaign_id = %s", [campaign.pk])
        cursor.execute(_INSERT_SQL.format(stage=_STAGE), [campaign.pk])


# Reasons in priority order (an invalid number says nothing about duplicates); the first
# occurrence of a phone in the file is the one kept.
_SKIP_SQL = (
    """UPDATE {stage} s SET reason = 'duplicate_in_file'
    FROM (SELECT phone, min(row_number) AS first FROM {stage} WHERE reason = ''
          GROUP BY phone HAVING count(*) > 1) d
    WHERE s.reason = '' AND s.phone = d.phone AND s.row_number > d.first""",
    """UPDATE {stage} s SET reason = 'opted_out'
    FROM campaigns_optout o WHERE s.reason = '' AND o.phone = s.phone""",
)
_RECENT_SQL = """UPDATE {stage} s SET reason = 'recently_messaged'
WHERE s.reason = '' AND EXISTS (
    SELECT 1 FROM campaigns_message m WHERE m.recipient = s.phone AND m.sent_at >= %s)"""
_INSERT_SQL = """INSERT INTO campaigns_contact
    (campaign_id, phone, name, variables, state, attempts, payload, last_error,
     skip_reason, row_number)
SELECT %s, phone, name, variables, CASE WHEN reason = '' THEN 'pending' ELSE 'skipped' END,
       0, '', '', reason, row_number
FROM {stage}"""


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
    campaign.total_count = rows
    campaign.skipped_count = sum(counts.values())
    campaign.import_rows_done = rows
    campaign.import_error = ""
    campaign.status = Campaign.Status.READY
    campaign.save(update_fields=_FINISH_FIELDS)


_FINISH_FIELDS = [
    "import_report",
    "columns",
    "total_count",
    "skipped_count",
    "import_rows_done",
    "import_error",
    "status",
    "updated_at",
]


def _fail(campaign: Campaign, reason: str) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.FAILED, import_error=reason, updated_at=timezone.now()
    )

"""The hot path's statements reach rows by key whatever the planner knows.

Each test shadows a table for its session with a temporary one of the same shape, freshly
loaded and never analysed (as every campaign's rows are on a server with autovacuum off), and
reads the plan: a batch of a few rows must not scan, hash or loop over the whole table, or the
statement's cost grows with the table and a campaign's cost with its square.
"""

import json

from django.db import connection
from django.utils import timezone

from campaigns.engine import batch, claims
from campaigns.services import statuses

ROWS = 5000
# The partial index of claimed contacts keeps an entry for every contact claimed since the last
# vacuum: read by a bitmap scan, it costs a flush the whole campaign so far.
CLAIMED_INDEX_READ = "Recheck Cond: ((state)::text = 'claimed'::text)"


def _shadow(cursor, table: str, insert: str) -> None:
    cursor.execute(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL)")
    cursor.execute(insert)
    cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [table])
    assert cursor.fetchone()[0] == 0


def _plan(cursor, sql: str, params: dict) -> str:
    cursor.execute("EXPLAIN " + sql, params)
    return "\n".join(row[0] for row in cursor.fetchall())


def _shadow_messages(cursor, rows: int = 30_000) -> None:
    # Below some thousands of rows a scan of the whole table is cheaper than a lookup per status
    # and the planner rightly takes it; the cost must stop growing with the table past that.
    _shadow(
        cursor,
        "campaigns_message",
        "INSERT INTO campaigns_message (campaign_id, contact_id, phone_id, template_id,"
        " recipient, wamid, request_body, status, error_title, sent_at, accepted_status,"
        " pricing_category)"
        " SELECT 1, n, 1, 1, '9715' || n, 'wamid.' || n, '{}', 'sent', '', now(),"
        f" 'accepted', '' FROM generate_series(1, {rows}) n",
    )


def test_a_status_batch_finds_its_messages_by_wamid_on_a_table_without_statistics(db):
    rows = [{"key": f"wamid.{n}", "status": "delivered", "ts": None} for n in (7, 70, 700)]
    with connection.cursor() as cursor:
        _shadow_messages(cursor)
        plan = _plan(cursor, statuses._APPLY_SQL, {"rows": json.dumps(rows)})
        cursor.execute("DROP TABLE pg_temp.campaigns_message")

    lookup, update = plan.split("Update on campaigns_message")[:2]
    assert "Seq Scan on campaigns_message" not in lookup, plan
    assert "Index Cond: ((wamid)::text = d.key)" in lookup, plan  # one lookup per status
    # An index scan on `id = l.id AND id = ANY(batch)` inside a loop sorted the whole batch's
    # array again for every row: 0.94 s for a batch of 5,000 statuses.
    assert "= ANY" not in update.split("Update on")[0], plan


def _shadow_contacts(cursor) -> None:
    _shadow(
        cursor,
        "campaigns_contact",
        "INSERT INTO campaigns_contact (campaign_id, row_number, phone, name, variables, state,"
        " skip_reason, attempts, payload, last_error, claim_token, claimed_by_id, sending,"
        " lease_until)"
        " SELECT 1, n, '+9715' || n, '', '{}', 'claimed', '', 0, '', '', 9, 1, false,"
        f" now() FROM generate_series(1, {ROWS}) n",
    )


def test_arming_a_slice_locks_its_contacts_by_key_on_a_table_without_statistics(db):
    rows = [{"id": n, "payload": "{}", "t": None} for n in (3, 30, 300)]
    params = {"rows": json.dumps(rows), "token": 9, "lease": timezone.now()}
    with connection.cursor() as cursor:
        _shadow_contacts(cursor)
        plan = _plan(cursor, claims._ARM, params)
        cursor.execute("DROP TABLE pg_temp.campaigns_contact")

    held, rest = plan.split("CTE stopped")
    # Before: every claimed contact was hashed or compared with every row of the batch.
    assert "Index Cond: (id = ANY" in held, plan
    assert "Seq Scan on campaigns_contact" not in plan, plan
    assert CLAIMED_INDEX_READ not in plan, plan
    # The updates reach each contact by key, with no array beside the key to sort per row.
    for update in rest.split("Update on campaigns_contact")[1:]:
        assert "Index Cond: (id = " in update, plan
        assert "= ANY" not in update.split("CTE ")[0], plan


def test_a_flush_writes_its_contacts_by_key_on_a_table_without_statistics(db):
    contacts = [{"id": n, "state": "sent", "attempts": 0} for n in (3, 30, 300)]
    params = {
        "campaign": 1,
        "phone": 1,
        "now": timezone.now(),
        "messages": "[]",
        "contacts": json.dumps(contacts),
        "token": 9,
    }
    with connection.cursor() as cursor:
        _shadow_contacts(cursor)
        plan = _plan(cursor, batch._FLUSH, params)
        cursor.execute("DROP TABLE pg_temp.campaigns_contact")

    assert "Seq Scan on campaigns_contact" not in plan, plan
    assert CLAIMED_INDEX_READ not in plan, plan
    assert "Index Cond: (id = ANY" in plan, plan


def test_a_status_batch_reports_what_moved_without_looping_over_the_batch(db):
    rows = [{"key": f"wamid.{n}", "status": "read", "ts": None} for n in range(1, 400)]
    with connection.cursor() as cursor:
        _shadow_messages(cursor)
        plan = _plan(cursor, statuses._APPLY_SQL, {"rows": json.dumps(rows)})
        cursor.execute("DROP TABLE pg_temp.campaigns_message")

    # Before: the report joined each matched row to every moved row (149 × 109 for one batch).
    top = plan.splitlines()[0]
    assert "Nested Loop" not in top, plan

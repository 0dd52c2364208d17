"""Campaign counters: the one module that writes them.

Each counter means what `campaign_recount` computes from contacts and messages. Every statement
that moves a contact or a message adds, in the same statement, the delta of exactly the rows it
moved, with the SQL below; so the counters equal a recount at every commit, whoever moved what.

- total: contacts in the list; skipped, sent, failed: contacts in that state now;
- delivered, read: messages Meta reported delivered (or read) and read; replied: messages answered.
"""

from django.db import connection

FIELDS = ("total", "skipped", "sent", "delivered", "read", "replied", "failed")


def contact_moves_sql(moved: str) -> str:
    """The body of a data-modifying CTE adding the moves in `moved` (a CTE with campaign_id,
    old_state, new_state) to sent, failed and skipped."""
    deltas = ", ".join(
        f"count(*) FILTER (WHERE new_state = '{s}') - count(*) FILTER (WHERE old_state = '{s}') "
        f"AS {s}"
        for s in ("sent", "failed", "skipped")
    )
    return f"""
    UPDATE campaigns_campaign cc SET sent_count = cc.sent_count + d.sent,
        failed_count = cc.failed_count + d.failed, skipped_count = cc.skipped_count + d.skipped
    FROM (SELECT campaign_id, {deltas} FROM {moved} GROUP BY campaign_id) d
    WHERE cc.id = d.campaign_id AND (d.sent <> 0 OR d.failed <> 0 OR d.skipped <> 0)
    """


def message_moves_sql(moved: str) -> str:
    """The body of a CTE adding status moves in `moved` (campaign_id, old_status, new_status) to
    delivered and read; read implies delivered."""
    return f"""
    UPDATE campaigns_campaign cc SET delivered_count = cc.delivered_count + d.delivered,
        read_count = cc.read_count + d.read
    FROM (SELECT campaign_id,
            count(*) FILTER (WHERE new_status IN ('delivered', 'read'))
                - count(*) FILTER (WHERE old_status IN ('delivered', 'read')) AS delivered,
            count(*) FILTER (WHERE new_status = 'read')
                - count(*) FILTER (WHERE old_status = 'read') AS read
          FROM {moved} GROUP BY campaign_id) d
    WHERE cc.id = d.campaign_id AND (d.delivered <> 0 OR d.read <> 0)
    """


def replies_sql(first_replies: str) -> str:
    """The body of a CTE counting messages answered for the first time (`first_replies` has one
    row per such message, with campaign_id)."""
    return f"""
    UPDATE campaigns_campaign cc SET replied_count = cc.replied_count + r.n
    FROM (SELECT campaign_id, count(*) AS n FROM {first_replies} GROUP BY campaign_id) r
    WHERE cc.id = r.campaign_id
    """


def contacts_move(*, where: str, set_: str, params: dict) -> list[tuple[int, int]]:
    """Moves the contacts matching `where` (SQL over alias c) with `set_` (assignments over c)
    and keeps the counters; returns (contact id, campaign id) of every contact moved."""
    sql = f"""
    WITH old AS (
        SELECT c.id, c.state AS old_state FROM campaigns_contact c WHERE {where}
        ORDER BY c.id FOR UPDATE
    ), moved AS (
        UPDATE campaigns_contact c SET {set_} FROM old WHERE c.id = old.id
        RETURNING c.id, c.campaign_id, old.old_state, c.state AS new_state
    ), bumped AS ({contact_moves_sql("moved")})
    SELECT id, campaign_id FROM moved
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


_TRUTH_SQL = """
SELECT
    (SELECT count(*) FROM campaigns_contact WHERE campaign_id = %(c)s),
    (SELECT count(*) FROM campaigns_contact WHERE campaign_id = %(c)s AND state = 'skipped'),
    (SELECT count(*) FROM campaigns_contact WHERE campaign_id = %(c)s AND state = 'sent'),
    (SELECT count(*) FROM campaigns_message WHERE campaign_id = %(c)s
        AND status IN ('delivered', 'read')),
    (SELECT count(*) FROM campaigns_message WHERE campaign_id = %(c)s AND status = 'read'),
    (SELECT count(*) FROM campaigns_message WHERE campaign_id = %(c)s
        AND replied_at IS NOT NULL),
    (SELECT count(*) FROM campaigns_contact WHERE campaign_id = %(c)s AND state = 'failed')
"""


def campaign_truth(*, campaign_id: int) -> dict[str, int]:
    """The counters as a recount of contacts and messages gives them."""
    with connection.cursor() as cursor:
        cursor.execute(_TRUTH_SQL, {"c": campaign_id})
        return dict(zip(FIELDS, cursor.fetchone(), strict=True))


def campaign_recount(*, campaign_id: int) -> dict[str, int]:
    """Sets every counter from a recount (after an import or a copy, which build whole lists)."""
    truth = campaign_truth(campaign_id=campaign_id)
    assignments = ", ".join(f"{name}_count = %({name})s" for name in FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE campaigns_campaign SET {assignments} WHERE id = %(id)s",
            {**truth, "id": campaign_id},
        )
    return truth


def campaign_counters(*, campaign_id: int) -> dict[str, int]:
    """The counters as stored."""
    columns = ", ".join(f"{name}_count" for name in FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM campaigns_campaign WHERE id = %s", [campaign_id])
        return dict(zip(FIELDS, cursor.fetchone(), strict=True))

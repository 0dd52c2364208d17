"""Incoming WhatsApp messages into the inbox, and statuses of the replies we sent from it.

Every step is set-based so a busy campaign's replies cost a handful of statements per batch:
conversations upserted in one statement, messages inserted once by wamid, and only the messages
inserted now raise unread counts, get attributed to a campaign message and trigger opt-outs, so
processing the same delivery again changes nothing.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from psycopg.types.json import Jsonb

from campaigns.counters import replies_sql
from campaigns.models import OptOut
from campaigns.services.optouts import optout_record
from campaigns.services.statuses import PRECEDENCE, StatusUpdate, status_precedence_sql
from templates_app.models import PhoneNumber

# Meta stamps messages with its clock in whole seconds, we stamp sends with ours.
CLOCK_SKEW = timedelta(seconds=60)
# Events in a chat that are not a customer answering a campaign.
NOT_A_REPLY = frozenset({"system", "revoke", "edit", "ephemeral", "request_welcome"})
PREVIEW_LENGTH = 200
E164_MAX_DIGITS = 15


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    phone_number_id: str
    wa_id: str
    wamid: str
    type: str
    body: str
    timestamp: datetime
    user_id: str = ""
    contact_name: str = ""
    context_wamid: str = ""
    raw: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    unknown_phone: int = 0
    attributed: int = 0
    opted_out: int = 0


def messages_ingest(*, messages: list[IncomingMessage]) -> IngestResult:
    """Stores new incoming messages and applies what they mean (unread, replies, opt-outs)."""
    result = IngestResult()
    phones = dict(
        PhoneNumber.objects.filter(
            phone_number_id__in={m.phone_number_id for m in messages}
        ).values_list("phone_number_id", "id")
    )
    unique = {m.wamid: m for m in messages if m.wamid and m.wa_id}
    known = [m for m in unique.values() if m.phone_number_id in phones]
    result.unknown_phone = len(unique) - len(known)
    if not known:
        return result
    with transaction.atomic():
        conversations = _conversations_upsert(known, phones)
        inserted = _messages_insert(known, phones, conversations)
        result.stored, result.duplicates = len(inserted), len(known) - len(inserted)
        new = [m for m in known if m.wamid in inserted]
        _conversations_touch(new, phones, conversations)
        result.attributed = _replies_attribute(new, phones, inserted)
        result.opted_out = _keywords_opt_out(new)
    return result


def _conversation_key(message: IncomingMessage, phones: dict) -> tuple[int, str]:
    return phones[message.phone_number_id], message.wa_id


def _conversations_upsert(messages, phones) -> dict[tuple[int, str], int]:
    latest: dict[tuple[int, str], IncomingMessage] = {}
    for message in sorted(messages, key=lambda m: m.timestamp):
        latest[_conversation_key(message, phones)] = message
    keys = list(latest)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_conversation (phone_id, wa_id, user_id, contact_name, unread_count,
                last_message_preview)
            SELECT phone_id, wa_id, user_id, contact_name, 0, ''
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
                AS d(phone_id, wa_id, user_id, contact_name)
            ON CONFLICT (phone_id, wa_id) DO UPDATE SET
                user_id = COALESCE(NULLIF(EXCLUDED.user_id, ''), inbox_conversation.user_id),
                contact_name = COALESCE(
                    NULLIF(EXCLUDED.contact_name, ''), inbox_conversation.contact_name)
            RETURNING id, phone_id, wa_id
            """,
            [
                [k[0] for k in keys],
                [k[1] for k in keys],
                [latest[k].user_id[:128] for k in keys],
                [latest[k].contact_name[:255] for k in keys],
            ],
        )
        return {(phone_id, wa_id): pk for pk, phone_id, wa_id in cursor.fetchall()}


def _messages_insert(messages, phones, conversations) -> dict[str, int]:
    """Inserts each message once; returns {wamid: id} of those that were new."""
    rows = [(conversations[_conversation_key(m, phones)], m) for m in messages]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_inboxmessage (conversation_id, wamid, direction, type, body, raw,
                status, error_title, context_wamid, timestamp, created_at)
            SELECT d.conversation_id, d.wamid, 'in', d.type, d.body, d.raw, '', '',
                d.context_wamid, d.ts, now()
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::jsonb[],
                %s::text[], %s::timestamptz[])
                AS d(conversation_id, wamid, type, body, raw, context_wamid, ts)
            ON CONFLICT (wamid) DO NOTHING
            RETURNING wamid, id
            """,
            [
                [conversation for conversation, _ in rows],
                [m.wamid for _, m in rows],
                [m.type[:32] for _, m in rows],
                [m.body for _, m in rows],
                [Jsonb(m.raw) for _, m in rows],
                [m.context_wamid[:128] for _, m in rows],
                [m.timestamp for _, m in rows],
            ],
        )
        return dict(cursor.fetchall())


def _conversations_touch(new, phones, conversations) -> None:
    if not new:
        return
    latest: dict[int, IncomingMessage] = {}
    counts: dict[int, int] = {}
    for message in sorted(new, key=lambda m: m.timestamp):
        pk = conversations[_conversation_key(message, phones)]
        latest[pk] = message
        counts[pk] = counts.get(pk, 0) + 1
    ids = list(latest)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE inbox_conversation c SET
                unread_count = c.unread_count + d.n,
                last_inbound_at = GREATEST(c.last_inbound_at, d.ts),
                last_message_at = GREATEST(c.last_message_at, d.ts),
                last_message_preview = CASE
                    WHEN c.last_message_at IS NULL OR d.ts >= c.last_message_at THEN d.preview
                    ELSE c.last_message_preview END
            FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[], %s::text[])
                AS d(id, n, ts, preview)
            WHERE c.id = d.id
            """,
            [
                ids,
                [counts[pk] for pk in ids],
                [latest[pk].timestamp for pk in ids],
                [message_preview(latest[pk]) for pk in ids],
            ],
        )


def message_preview(message: IncomingMessage) -> str:
    text = " ".join(message.body.split())
    return (text or f"[{message.type}]")[:PREVIEW_LENGTH]


# A reply belongs to the campaign message it quotes (context.id); otherwise to the latest
# campaign message sent to that person from that number within the window, found through the
# (recipient, sent_at) index. Only the first reply counts for the message and its campaign.
# The quoted message must have left from the number the reply came to: a person can only quote
# what that chat holds, and a delivery signed with one account's own secret must not count
# replies for another account's campaign by naming its wamids. The conversation takes the name
# the campaign's list gave the person, which the marketer knows them by.
_ATTRIBUTE_SQL = f"""
WITH d AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(phones)s::bigint[], %(recipients)s::text[],
        %(contexts)s::text[], %(ts)s::timestamptz[]) AS d(id, phone_id, recipient, context, ts)
),
target AS (
    SELECT d.id, d.ts, COALESCE(
        (SELECT m.id FROM campaigns_message m
         WHERE d.context <> '' AND m.wamid = d.context AND m.phone_id = d.phone_id),
        (SELECT m.id FROM campaigns_message m
         WHERE m.recipient = d.recipient AND m.phone_id = d.phone_id
           AND m.sent_at <= d.ts + %(skew)s AND m.sent_at >= d.ts - %(window)s
         ORDER BY m.sent_at DESC, m.id DESC LIMIT 1)
    ) AS message_id
    FROM d
),
linked AS (
    UPDATE inbox_inboxmessage i SET campaign_message_id = t.message_id
    FROM target t WHERE i.id = t.id AND t.message_id IS NOT NULL
    RETURNING i.id, i.conversation_id, t.message_id, t.ts
),
named AS (
    UPDATE inbox_conversation c SET list_name = n.name
    FROM (SELECT DISTINCT ON (l.conversation_id) l.conversation_id, ct.name
          FROM linked l
          JOIN campaigns_message m ON m.id = l.message_id
          JOIN campaigns_contact ct ON ct.id = m.contact_id
          WHERE ct.name <> ''
          ORDER BY l.conversation_id, l.ts DESC) n
    WHERE c.id = n.conversation_id AND c.list_name <> n.name
),
first_reply AS (
    UPDATE campaigns_message m SET replied_at = f.ts
    FROM (SELECT message_id, min(ts) AS ts FROM target WHERE message_id IS NOT NULL
          GROUP BY message_id) f
    WHERE m.id = f.message_id AND m.replied_at IS NULL
    RETURNING m.campaign_id
),
bumped AS ({replies_sql("first_reply")})
SELECT count(*) FROM linked
"""


def _replies_attribute(new, phones, inserted: dict[str, int]) -> int:
    replies = [m for m in new if m.type not in NOT_A_REPLY]
    if not replies:
        return 0
    params = {
        "ids": [inserted[m.wamid] for m in replies],
        "phones": [phones[m.phone_number_id] for m in replies],
        "recipients": [f"+{m.wa_id}" for m in replies],
        "contexts": [m.context_wamid for m in replies],
        "ts": [m.timestamp for m in replies],
        "window": timedelta(hours=settings.REPLY_ATTRIBUTION_HOURS),
        "skew": CLOCK_SKEW,
    }
    with connection.cursor() as cursor:
        cursor.execute(_ATTRIBUTE_SQL, params)
        return cursor.fetchone()[0]


def is_opt_out_keyword(text: str) -> bool:
    """The whole message, case and spacing aside, is one of the configured keywords."""
    words = " ".join(text.split()).upper()
    return bool(words) and words in {k.strip().upper() for k in settings.OPT_OUT_KEYWORDS}


def is_phone_digits(wa_id: str) -> bool:
    """A wa_id that is an E.164 number without its "+"; the opt-out list holds nothing else.
    (str.isdigit alone also accepts other scripts' digits, and wa_id may be a username id.)"""
    return wa_id.isascii() and wa_id.isdigit() and len(wa_id) <= E164_MAX_DIGITS


def _keywords_opt_out(new) -> int:
    recorded = 0
    for message in new:
        if (
            message.type in ("text", "button", "interactive")
            and is_phone_digits(message.wa_id)
            and is_opt_out_keyword(message.body)
        ):
            recorded += optout_record(
                phone=f"+{message.wa_id}",
                reason=OptOut.Reason.KEYWORD,
                source=f"Replied {message.body.strip()[:40]!r} to {message.phone_number_id}",
                at=message.timestamp,
            )
    return recorded


def inbox_statuses_apply(*, updates: list[StatusUpdate]) -> set[str]:
    """Moves replies sent from the inbox forward (sent < delivered < read; failed final);
    returns the wamids that belong to inbox messages."""
    best: dict[str, StatusUpdate] = {}
    for update in updates:
        current = best.get(update.wamid)
        if update.status in PRECEDENCE and (
            current is None or PRECEDENCE[update.status] > PRECEDENCE[current.status]
        ):
            best[update.wamid] = update
    if not best:
        return set()
    rows = list(best.values())
    with connection.cursor() as cursor:
        cursor.execute(_INBOX_STATUS_SQL, _inbox_status_params(rows))
        return {wamid for (wamid,) in cursor.fetchall()}


_INBOX_STATUS_SQL = f"""
WITH d AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[])
        AS d(wamid, status, code, title)
),
moved AS (
    UPDATE inbox_inboxmessage i SET
        status = d.status,
        error_code = CASE WHEN d.status = 'failed' THEN d.code ELSE i.error_code END,
        error_title = CASE WHEN d.status = 'failed' THEN d.title ELSE i.error_title END
    FROM d
    WHERE i.wamid = d.wamid AND i.direction = 'out' AND i.status <> 'failed'
        AND {status_precedence_sql("d.status")} > {status_precedence_sql("i.status")}
)
SELECT i.wamid FROM inbox_inboxmessage i JOIN d ON i.wamid = d.wamid WHERE i.direction = 'out'
"""


def _inbox_status_params(rows: list[StatusUpdate]) -> list:
    return [
        [u.wamid for u in rows],
        [u.status for u in rows],
        [u.error_code for u in rows],
        [u.error_title[:1000] for u in rows],
    ]

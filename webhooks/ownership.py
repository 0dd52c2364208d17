"""What a delivery signed with an account's own app secret may speak for: that account only.

Whoever adds an account chooses its app secret, so a delivery it signs is checked before it is
stored: every entry must be a WABA of the accounts sharing that secret, no change may name a
number another account owns, and no status may move a message sent from another account's
number (by wamid, or by the contact id an ambiguous send's callback names). Only deliveries
that META_APP_SECRET did not sign come here, so Meta's usual traffic is never parsed at the door.
"""

import orjson
from django.db import connection

from webhooks.parsing import (
    InvalidDelivery,
    ParsedBatch,
    delivery_load,
    delivery_walk,
    entry_waba_id,
    value_phone_number_id,
)
from webhooks.secrets import AccountSecrets


def delivery_belongs(body: bytes, *, waba_ids: frozenset[str], accounts: AccountSecrets) -> bool:
    try:
        data = delivery_load(body)
    except InvalidDelivery:
        return False
    entries = data.get("entry")
    if not isinstance(entries, list) or not entries:
        return False
    if not all(_entry_belongs(entry, waba_ids, accounts) for entry in entries):
        return False
    parsed = ParsedBatch()
    delivery_walk(data, into=parsed)
    phones = {phone for phone, waba in accounts.waba_by_phone.items() if waba in waba_ids}
    return _statuses_belong(parsed, phones)


def _entry_belongs(entry, waba_ids: frozenset[str], accounts: AccountSecrets) -> bool:
    if not isinstance(entry, dict):
        return False
    waba_id = entry_waba_id(entry)
    if waba_id not in waba_ids:
        return False
    changes = entry.get("changes")
    for change in changes if isinstance(changes, list) else []:
        value = change.get("value") if isinstance(change, dict) else None
        phone = value_phone_number_id(value) if isinstance(value, dict) else ""
        # A number no account owns yet reaches nothing the processor would change.
        if accounts.waba_by_phone.get(phone, waba_id) != waba_id:
            return False
    return True


def _statuses_belong(parsed: ParsedBatch, phones: set[str]) -> bool:
    # Statuses match messages by wamid alone, so the number in the envelope proves nothing.
    wamids = sorted({s.wamid for s in parsed.statuses if s.wamid})
    contacts = sorted({s.contact_id for s in parsed.statuses if s.contact_id})
    if not wamids and not contacts:
        return True
    # One statement, its lists as JSON: psycopg quotes array items one by one in Python.
    params = [orjson.dumps(v).decode() for v in (wamids, sorted(phones), contacts)]
    with connection.cursor() as cursor:
        cursor.execute(_FOREIGN_SQL, {"wamids": params[0], "phones": params[1], "ids": params[2]})
        return not cursor.fetchone()[0]


_FOREIGN_SQL = """
WITH w AS (SELECT json_array_elements_text(%(wamids)s::json) AS wamid),
own AS (
    SELECT id FROM templates_app_phonenumber
    WHERE phone_number_id IN (SELECT json_array_elements_text(%(phones)s::json))
)
SELECT EXISTS (
    SELECT 1 FROM campaigns_message m JOIN w ON m.wamid = w.wamid
    WHERE m.phone_id NOT IN (SELECT id FROM own)
) OR EXISTS (
    SELECT 1 FROM inbox_inboxmessage i JOIN w ON i.wamid = w.wamid
    JOIN inbox_conversation c ON c.id = i.conversation_id
    WHERE c.phone_id NOT IN (SELECT id FROM own)
) OR EXISTS (
    SELECT 1 FROM campaigns_contact k
    WHERE k.id IN (SELECT json_array_elements_text(%(ids)s::json)::bigint)
      AND NOT EXISTS (
          SELECT 1 FROM campaigns_campaignsender s
          WHERE s.campaign_id = k.campaign_id AND s.phone_id IN (SELECT id FROM own)
      )
)
"""

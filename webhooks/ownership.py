"""What a delivery signed with an account's own app secret may speak for: that account only.

Whoever adds an account chooses its app secret, so a delivery it signs is checked before it is
stored: every entry must be a WABA of the accounts sharing that secret, no change may name a
number another account owns, and no status may move a message sent from another account's
number (by wamid, or by the contact id an ambiguous send's callback names). Only deliveries
that META_APP_SECRET did not sign come here, so Meta's usual traffic is never parsed at the door.
"""

from campaigns.models import Contact, Message
from inbox.models import InboxMessage
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
    wamids = {s.wamid for s in parsed.statuses if s.wamid}
    contacts = {s.contact_id for s in parsed.statuses if s.contact_id}
    if not wamids and not contacts:
        return True
    foreign_messages = Message.objects.filter(wamid__in=wamids).exclude(
        phone__phone_number_id__in=phones
    )
    foreign_replies = InboxMessage.objects.filter(wamid__in=wamids).exclude(
        conversation__phone__phone_number_id__in=phones
    )
    foreign_contacts = Contact.objects.filter(pk__in=contacts).exclude(
        campaign__senders__phone__phone_number_id__in=phones
    )
    return not (foreign_messages.exists() or foreign_replies.exists() or foreign_contacts.exists())

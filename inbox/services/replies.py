"""Answering a customer from the inbox: free-form text inside WhatsApp's 24-hour window."""

from django.db import transaction
from django.utils import timezone

from inbox.models import Conversation, InboxMessage
from titanflow.whatsapp.client import graph_client
from titanflow.whatsapp.errors import AmbiguousSendError, MetaAPIError, TransportError
from titanflow.whatsapp.payloads import encode_payload

MAX_TEXT_LENGTH = 4096
PREVIEW_LENGTH = 200


class ReplyError(Exception):
    """The reply was not sent; the message is a sentence a marketer can read."""


class ReplyWindowClosed(ReplyError):
    pass


def conversation_reply(*, conversation: Conversation, text: str, user) -> InboxMessage:
    """Sends `text` to the customer through the conversation's number and records it."""
    text = text.strip()
    _check_reply(conversation, text)
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": conversation.wa_id,
        "type": "text",
        "text": {"preview_url": False, "body": text},
    }
    wamid = _send(conversation, encode_payload(payload))
    return _record(conversation, text=text, wamid=wamid, payload=payload, user=user)


def _check_reply(conversation: Conversation, text: str) -> None:
    if not text:
        raise ReplyError("Write a message before sending.")
    # Checked before the send: Postgres cannot store a NUL, so a reply Meta accepted with one
    # would go out and then fail to be recorded.
    if "\x00" in text:
        raise ReplyError("The message cannot contain NUL characters.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ReplyError(f"WhatsApp messages are at most {MAX_TEXT_LENGTH} characters long.")
    if not conversation.reply_window_open:
        raise ReplyWindowClosed(
            "More than 24 hours have passed since this customer last wrote, so WhatsApp only "
            "allows approved templates now. Start a campaign to reach them again."
        )


def _send(conversation: Conversation, body: bytes) -> str:
    phone = conversation.phone
    client = graph_client(phone.account.access_token)
    try:
        return client.send_message(phone.phone_number_id, body).wamid
    except AmbiguousSendError as exc:
        raise ReplyError(
            "WhatsApp did not answer in time; the reply may have gone out. "
            "Wait for it to appear here before sending it again."
        ) from exc
    except TransportError as exc:
        raise ReplyError("WhatsApp could not be reached. Try again in a moment.") from exc
    except MetaAPIError as exc:
        code = f" (code {exc.code})" if exc.code else ""
        raise ReplyError(f"WhatsApp refused the reply{code}: {exc.info.meaning}") from exc


def _record(conversation, *, text: str, wamid: str, payload: dict, user) -> InboxMessage:
    now = timezone.now()
    with transaction.atomic():
        message = InboxMessage.objects.create(
            conversation=conversation,
            wamid=wamid,
            direction=InboxMessage.Direction.OUTBOUND,
            type="text",
            body=text,
            raw={"request": payload, "sent_by": user.get_username()},
            status="sent",
            timestamp=now,
        )
        # Whoever answers has read the thread.
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=now, last_message_preview=text[:PREVIEW_LENGTH], unread_count=0
        )
    return message

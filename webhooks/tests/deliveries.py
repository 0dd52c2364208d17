"""Deliveries shaped like Meta's, written here so the suite needs nothing outside the project."""

import json
import time

from titanflow.whatsapp.signature import compute_signature

WABA_ID = "190000000000001"
PHONE_NUMBER_ID = "290000000000001"
DISPLAY_NUMBER = "15550000001"


def envelope(*changes: tuple[str, dict], waba_id: str = WABA_ID, at: int | None = None) -> dict:
    entry = {"id": waba_id, "changes": [{"field": f, "value": v} for f, v in changes]}
    if at is not None:
        entry["time"] = at
    return {"object": "whatsapp_business_account", "entry": [entry]}


def _metadata(phone_number_id: str) -> dict:
    return {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id}


def status(wamid: str, state: str, *, at: int | None = None, callback: str = "", error=None):
    item = {
        "id": wamid,
        "status": state,
        "timestamp": str(at or int(time.time())),
        "recipient_id": "971500000001",
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
    }
    if callback:
        item["biz_opaque_callback_data"] = callback
    if error:
        code, title = error
        item["errors"] = [{"code": code, "title": title, "error_data": {"details": title}}]
    return item


def statuses(*items: dict, phone_number_id: str = PHONE_NUMBER_ID) -> dict:
    value = {"messaging_product": "whatsapp", "metadata": _metadata(phone_number_id)}
    return envelope(("messages", {**value, "statuses": list(items)}))


def incoming(
    wamid: str,
    *,
    wa_id: str = "971500000001",
    text: str = "Hello",
    context: str = "",
    at: int | None = None,
    name: str = "Layla",
    phone_number_id: str = PHONE_NUMBER_ID,
    kind: str = "text",
    part: dict | None = None,
) -> dict:
    message = {"from": wa_id, "id": wamid, "timestamp": str(at or int(time.time())), "type": kind}
    message[kind] = part if part is not None else {"body": text}
    if context:
        message["context"] = {"from": DISPLAY_NUMBER, "id": context}
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone_number_id),
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id, "user_id": "US.1"}],
        "messages": [message],
    }
    return envelope(("messages", value))


def template_status(meta_id: str, event: str, *, name="spring_sale", at: int | None = None):
    value = {
        "event": event,
        "message_template_id": int(meta_id),
        "message_template_name": name,
        "message_template_language": "en_US",
        "reason": "LOW_QUALITY" if event == "PAUSED" else "NONE",
    }
    return envelope(("message_template_status_update", value), at=at)


def preference(wa_id: str, value: str, *, timestamp: int = 1) -> dict:
    item = {
        "wa_id": wa_id,
        "category": "marketing_messages",
        "value": value,
        "timestamp": str(timestamp),
    }
    body = {"messaging_product": "whatsapp", "metadata": _metadata(PHONE_NUMBER_ID)}
    return envelope(("user_preferences", {**body, "user_preferences": [item]}))


def encode(delivery: dict) -> bytes:
    return json.dumps(delivery).encode()


def signed_headers(body: bytes, secret: str) -> dict:
    return {"HTTP_X_HUB_SIGNATURE_256": compute_signature(secret, body)}

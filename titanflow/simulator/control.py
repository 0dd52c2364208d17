"""The simulator's own API under /_sim/: counters for tests and the benchmark, and Meta's events.

No authentication: it is a test double listening on loopback. Bad input answers 400
`{"error": "..."}` (404 for an unknown phone, WABA or template).
"""

import json
import time

from aiohttp import web

from titanflow.simulator import payloads
from titanflow.simulator.graph import SIMULATOR, json_response
from titanflow.simulator.scenario import ScenarioError
from titanflow.simulator.world import Phone, Template, World, WorldError, digits

routes = web.RouteTableDef()
_PHONE_SETTINGS = {
    "max_mps": int,
    "quality_rating": str,
    "status": str,
    "throughput_level": str,
    "messaging_limit": str,
}
INBOUND_TYPES = ("text", "button")


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@web.middleware
async def control_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (ControlError, ScenarioError, WorldError) as error:
        return json_response({"error": str(error)}, status=getattr(error, "status", 400))


async def _json_object(request: web.Request) -> dict:
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise ControlError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _text(data: dict, key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{key} is required and must be a string")
    return value


@routes.get("/_sim/stats")
async def stats(request: web.Request) -> web.Response:
    # ?brief=1: totals only, for a caller polling until the webhooks are posted.
    brief = request.query.get("brief") in ("1", "true")
    return json_response(request.app[SIMULATOR].stats(brief=brief))


@routes.get("/_sim/messages")
async def messages(request: web.Request) -> web.Response:
    bodies = request.app[SIMULATOR].messages(request.query.get("to"))
    # The exact bytes received, joined into one JSON list without decoding and re-encoding them.
    return web.Response(body=b"[" + b",".join(bodies) + b"]", content_type="application/json")


@routes.post("/_sim/reset")
async def reset(request: web.Request) -> web.Response:
    request.app[SIMULATOR].reset()
    return json_response({"reset": True})


@routes.post("/_sim/scenario")
async def set_scenario(request: web.Request) -> web.Response:
    scenario = request.app[SIMULATOR].load_scenario(await request.read())
    return json_response({"rules": len(scenario.rules)})


@routes.get("/_sim/scenario")
async def read_scenario(request: web.Request) -> web.Response:
    rules = request.app[SIMULATOR].scenario.rules
    return json_response(
        {"rules": [{"index": r.index, "seen": r.seen, "fired": r.fired} for r in rules]}
    )


@routes.get("/_sim/world")
async def read_world(request: web.Request) -> web.Response:
    return json_response(request.app[SIMULATOR].world.to_dict())


@routes.post("/_sim/world")
async def change_world(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    if data.pop("replace", False):
        simulator.world = World.from_dict(data)
    else:
        simulator.world.merge(data)
    return json_response(simulator.world.to_dict())


@routes.post("/_sim/phone")
async def change_phone(request: web.Request) -> web.Response:
    data = await _json_object(request)
    phone = _phone(request, _text(data, "phone_number_id"))
    for key, value in data.items():
        if key == "phone_number_id":
            continue
        kind = _PHONE_SETTINGS.get(key)
        if kind is None:
            raise ControlError(f"{key}: not a phone setting ({', '.join(_PHONE_SETTINGS)})")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ControlError(f"{key}: must be {kind.__name__}")
        setattr(phone, key, value)
    if phone.max_mps < 1:
        raise ControlError("max_mps must be at least 1")
    return json_response({"phone_number_id": phone.phone_number_id, "max_mps": phone.max_mps})


def _phone(request: web.Request, phone_number_id: str) -> Phone:
    phone = request.app[SIMULATOR].world.phones.get(phone_number_id)
    if phone is None:
        raise ControlError(f"no phone {phone_number_id!r} in the world", status=404)
    return phone


@routes.post("/_sim/template_event")
async def template_event(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    event = _text(data, "event").upper()
    if event not in payloads.TEMPLATE_EVENTS:
        raise ControlError(f"event must be one of {', '.join(payloads.TEMPLATE_EVENTS)}")
    statuses = []
    for template in _templates(simulator.world, data):
        template.status = payloads.TEMPLATE_EVENTS[event]
        delivery = payloads.template_status_delivery(template, event, data.get("reason"))
        statuses.append(await simulator.webhooks.post_now(delivery))
    return json_response({"event": event, "webhook_statuses": statuses})


def _templates(world: World, data: dict) -> list[Template]:
    if "template_id" in data:
        found = [world.templates.get(str(data["template_id"]))]
    else:
        name, language = _text(data, "template_name"), data.get("language")
        found = [
            t
            for t in world.templates_of(_text(data, "waba_id"))
            if t.name == name and language in (None, t.language)
        ]
    found = [t for t in found if t is not None]
    if not found:
        raise ControlError("no such template in the world", status=404)
    return found


@routes.post("/_sim/phone_event")
async def phone_event(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    phone = _phone(request, _text(data, "phone_number_id"))
    event = _text(data, "event", "THROUGHPUT_UPGRADE").upper()
    if event == "THROUGHPUT_UPGRADE":
        phone.throughput_level, phone.max_mps = "HIGH", 1000
    phone.messaging_limit = data.get("messaging_limit", phone.messaging_limit)
    quality = payloads.QUALITY_EVENTS.get(event, phone.quality_rating)
    phone.quality_rating = data.get("quality_rating", quality)
    status = await simulator.webhooks.post_now(payloads.phone_quality_delivery(phone, event))
    return json_response({"event": event, "webhook_status": status})


@routes.post("/_sim/capability_event")
async def capability_event(request: web.Request) -> web.Response:
    """The portfolio's messaging limit moves to another tier: business_capability_update."""
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    account = simulator.world.accounts.get(_text(data, "waba_id"))
    if account is None:
        raise ControlError(f"no account {data['waba_id']!r} in the world", status=404)
    account.messaging_limit = _text(data, "messaging_limit").upper()
    status = await simulator.webhooks.post_now(payloads.capability_delivery(account))
    return json_response({"messaging_limit": account.messaging_limit, "webhook_status": status})


@routes.post("/_sim/account_event")
async def account_event(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    waba_id = _text(data, "waba_id")
    if waba_id not in simulator.world.accounts:
        raise ControlError(f"no account {waba_id!r} in the world", status=404)
    event = _text(data, "event").upper()
    details = {k: v for k, v in data.items() if k not in ("waba_id", "event")}
    delivery = payloads.account_update_delivery(waba_id, event, details)
    status = await simulator.webhooks.post_now(delivery)
    return json_response({"event": event, "webhook_status": status})


@routes.post("/_sim/inbound")
async def inbound(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    phone = _phone(request, _text(data, "phone_number_id"))
    wa_id = digits(_text(data, "from"))
    wamid = simulator.next_wamid(wa_id)
    message = _inbound_message(data, wa_id=wa_id, wamid=wamid, business=phone.display_digits)
    name = data.get("name") or "WhatsApp User"
    delivery = payloads.inbound_delivery(phone, wa_id=wa_id, name=name, message=message)
    status = await simulator.webhooks.post_now(delivery)
    return json_response({"wamid": wamid, "webhook_status": status})


def _inbound_message(data: dict, *, wa_id: str, wamid: str, business: str) -> dict:
    kind, text = data.get("type", "text"), _text(data, "text")
    if kind not in INBOUND_TYPES:
        raise ControlError(f"type must be one of {', '.join(INBOUND_TYPES)}")
    message = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": kind}
    if data.get("context_id"):
        message["context"] = {"from": business, "id": data["context_id"]}
    if kind == "text":
        message["text"] = {"body": text}
    else:  # a tap on a quick-reply button of a template
        message["button"] = {"payload": text, "text": text}
    return message


@routes.post("/_sim/user_preferences")
async def user_preferences(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    data = await _json_object(request)
    phone = _phone(request, _text(data, "phone_number_id"))
    value = _text(data, "value", "stop")
    if value not in ("stop", "resume"):
        raise ControlError("value must be stop or resume")
    wa_id = digits(_text(data, "wa_id"))
    delivery = payloads.user_preferences_delivery(phone, wa_id=wa_id, value=value)
    status = await simulator.webhooks.post_now(delivery)
    return json_response({"webhook_status": status})

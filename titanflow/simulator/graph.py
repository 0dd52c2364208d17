"""The Graph API endpoints TitanFlow calls: send, list templates, list and read phone numbers."""

import asyncio
import base64
import json

from aiohttp import web

from titanflow.simulator.core import Simulator
from titanflow.simulator.errors import GraphError, unknown_object
from titanflow.simulator.world import Phone, Template

SIMULATOR = web.AppKey("simulator", Simulator)
VERSION = r"{version:v\d+\.\d+}"
MAX_PAGE = 1000

routes = web.RouteTableDef()


def json_response(data, *, status: int = 200) -> web.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def error_response(error: GraphError) -> web.Response:
    return json_response(error.body(), status=error.http_status)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("access_token")


@routes.post(f"/{VERSION}/{{node}}/messages")
async def send_message(request: web.Request) -> web.StreamResponse:
    simulator = request.app[SIMULATOR]
    raw = await request.read()
    node_id, token = request.match_info["node"], bearer_token(request)
    try:
        outcome = simulator.send(phone_number_id=node_id, token=token, raw=raw)
        response = json_response(outcome.body)
    except GraphError as error:
        outcome, response = None, error_response(error)
    await _latency(simulator)
    if outcome is not None and outcome.hold:
        return await _hold_then_drop(request, simulator)
    return response


async def _latency(simulator: Simulator) -> None:
    options = simulator.options
    if options.latency_ms or options.latency_jitter_ms:
        jitter = simulator.rng.uniform(0, options.latency_jitter_ms)
        await asyncio.sleep((options.latency_ms + jitter) / 1000)


async def _hold_then_drop(request: web.Request, simulator: Simulator) -> web.StreamResponse:
    await asyncio.sleep(simulator.options.timeout_hold_s)
    if request.transport is not None:
        request.transport.close()
    # The connection is gone: nothing reaches the client, like a reply lost on Meta's side.
    return web.Response(status=504)


@routes.get(f"/{VERSION}/{{node}}/message_templates")
async def list_templates(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    waba_id = request.match_info["node"]
    _authorize_waba(simulator, request, waba_id)
    wanted = requested_fields(request)
    templates = [t for t in simulator.world.templates_of(waba_id) if _filtered_in(t, request)]
    return json_response(paginate(request, [template_fields(t, wanted) for t in templates]))


def _filtered_in(template: Template, request: web.Request) -> bool:
    """Graph's optional filters: ?status=APPROVED&category=MARKETING&language=ar&name=..."""
    query = request.query
    return all(
        query[name].upper() == getattr(template, name).upper()
        for name in ("status", "category", "language", "name")
        if name in query
    )


@routes.get(f"/{VERSION}/{{node}}/phone_numbers")
async def list_phone_numbers(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    waba_id = request.match_info["node"]
    _authorize_waba(simulator, request, waba_id)
    wanted = requested_fields(request)
    data = [phone_fields(p, wanted) for p in simulator.world.phones_of(waba_id)]
    return json_response(paginate(request, data))


@routes.get(f"/{VERSION}/{{node}}")
async def read_node(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    node_id = request.match_info["node"]
    account = simulator.authorize(node_id, bearer_token(request), method="get")
    wanted = requested_fields(request)
    phone = simulator.world.phones.get(node_id)
    if phone is not None:
        return json_response(phone_fields(phone, wanted))
    return json_response(_pick({"id": account.waba_id, "name": account.name}, wanted))


def _authorize_waba(simulator: Simulator, request: web.Request, waba_id: str) -> None:
    simulator.authorize(waba_id, bearer_token(request), method="get")
    if waba_id not in simulator.world.accounts:  # a phone number id has no such edge
        raise unknown_object(waba_id, "get")


@web.middleware
async def graph_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GraphError as error:
        return error_response(error)


def requested_fields(request: web.Request) -> set[str] | None:
    """Top-level names of `fields=a,b{c,d},e`; None when every field is wanted."""
    raw = request.query.get("fields")
    if not raw:
        return None
    names, depth, current = set(), 0, ""
    for char in raw + ",":
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            names.add(current.split("{")[0].strip())
            current = ""
        else:
            current += char
    return names - {""}


def _pick(data: dict, wanted: set[str] | None) -> dict:
    if wanted is None:
        return data
    return {key: value for key, value in data.items() if key == "id" or key in wanted}


def template_fields(template: Template, wanted: set[str] | None) -> dict:
    data = {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "category": template.category,
        "parameter_format": template.parameter_format,
        "components": template.components,
        "quality_score": {"score": template.quality_score, "date": 1735689600},
    }
    return _pick(data, wanted)


def phone_fields(phone: Phone, wanted: set[str] | None) -> dict:
    data = {
        "id": phone.phone_number_id,
        "display_phone_number": phone.display_phone_number,
        "verified_name": phone.verified_name,
        "quality_rating": phone.quality_rating,
        "status": phone.status,
        "throughput": {"level": phone.throughput_level},
        "whatsapp_business_manager_messaging_limit": phone.messaging_limit,
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
    }
    return _pick(data, wanted)


def paginate(request: web.Request, data: list[dict]) -> dict:
    """One page of `data` with Graph's cursors; `next` is absent on the last page."""
    limit = _limit(request)
    start = 0
    if "after" in request.query:
        start = _cursor_index(request.query["after"]) + 1
    elif "before" in request.query:
        start = max(0, _cursor_index(request.query["before"]) - limit)
    page = data[start : start + limit]
    if not page:
        return {"data": []}
    first, last = start, start + len(page) - 1
    paging = {"cursors": {"before": _cursor(first), "after": _cursor(last)}}
    if last + 1 < len(data):
        paging["next"] = _page_url(request, after=_cursor(last))
    if first > 0:
        paging["previous"] = _page_url(request, before=_cursor(first))
    return {"data": page, "paging": paging}


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", 25))
    except ValueError:
        raise GraphError(100, "limit must be an integer") from None
    return min(max(limit, 1), MAX_PAGE)


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"sim-cursor:{index}".encode()).decode().rstrip("=")


def _cursor_index(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, index = text.split(":")
        if prefix == "sim-cursor":
            return int(index)
    except ValueError:
        pass
    raise GraphError(100, f"Invalid cursor {cursor!r}")


def _page_url(request: web.Request, **cursor: str) -> str:
    query = {k: v for k, v in request.query.items() if k not in ("after", "before")}
    return str(request.url.with_query({**query, **cursor}))

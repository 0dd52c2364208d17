"""Meta's checks on a send request: its shape, then the template it names and its parameters."""

import json
from dataclasses import dataclass

from titanflow.simulator.errors import GraphError
from titanflow.simulator.world import SENDABLE_STATUSES, Phone, Template, World, digits

KINDS = ("template", "text")
_TEMPLATE_REFUSALS = {"PAUSED": 132015, "DISABLED": 132016}


@dataclass
class Outgoing:
    """The parts of a send request the simulator acts on."""

    to: str
    wa_id: str
    kind: str
    template_name: str | None = None
    language: str | None = None
    components: list | None = None
    biz_opaque_callback_data: str | None = None


def parse_message(raw: bytes) -> Outgoing:
    try:
        body = json.loads(raw)
    except ValueError:
        raise GraphError(100, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise GraphError(100, "The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise GraphError(100, "The parameter messaging_product is required and must be whatsapp.")
    to = body.get("to")
    wa_id = digits(to) if isinstance(to, str) else ""
    if not wa_id:
        raise GraphError(100, "The parameter to is required and must be a phone number.")
    kind = body.get("type", "text")
    if kind not in KINDS:
        raise GraphError(100, f"Param type must be one of {{{', '.join(KINDS)}}} here.")
    outgoing = Outgoing(to=to, wa_id=wa_id, kind=kind)
    outgoing.biz_opaque_callback_data = _callback_data(body.get("biz_opaque_callback_data"))
    if kind == "text":
        _check_text(body.get("text"))
    else:
        _read_template(body.get("template"), outgoing)
    return outgoing


def _callback_data(value) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 512):
        raise GraphError(100, "biz_opaque_callback_data must be a string of at most 512 chars.")
    return value


def _check_text(text) -> None:
    if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
        raise GraphError(100, "The parameter text['body'] is required.")


def _read_template(template, outgoing: Outgoing) -> None:
    if not isinstance(template, dict) or not isinstance(template.get("name"), str):
        raise GraphError(100, "The parameter template['name'] is required.")
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise GraphError(100, "The parameter template['language']['code'] is required.")
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise GraphError(100, "The parameter template['components'] must be a list of objects.")
    outgoing.template_name = template["name"]
    outgoing.language = language["code"]
    outgoing.components = components


def check_template(world: World, phone: Phone, outgoing: Outgoing) -> Template:
    """The approved template the send names, or Meta's template error."""
    name, language = outgoing.template_name, outgoing.language
    template = world.template(phone.waba_id, name, language)
    if template is None or template.status not in SENDABLE_STATUSES | set(_TEMPLATE_REFUSALS):
        raise GraphError(132001, f"template name ({name}) does not exist in {language}")
    if template.status in _TEMPLATE_REFUSALS:
        raise GraphError(_TEMPLATE_REFUSALS[template.status], f"template {name} ({language})")
    check_parameters(template, outgoing.components or [])
    return template


def check_parameters(template: Template, components: list) -> None:
    header, body, buttons = _given(components)
    slots = template.slots
    _expect_count("header", len(header), slots.header)
    _expect_count("body", len(body), slots.body)
    for index, count in slots.buttons:
        _expect_count(f"button {index}", len(buttons.get(index, [])), count)
    if slots.header_media and header and _kind(header[0]) != slots.header_media:
        raise GraphError(
            132012, f"header: expected {slots.header_media}, received {_kind(header[0])}"
        )
    if template.parameter_format == "NAMED":
        _expect_names(slots.names, header + body)


def _given(components: list) -> tuple[list, list, dict[int, list]]:
    header, body, buttons = [], [], {}
    for component in components:
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise GraphError(100, "Each component's parameters must be a list.")
        kind = str(component.get("type", "")).lower()
        if kind == "header":
            header = parameters
        elif kind == "body":
            body = parameters
        elif kind == "button":
            buttons[_button_index(component)] = parameters
    return header, body, buttons


def _button_index(component: dict) -> int:
    try:
        return int(component.get("index"))
    except (TypeError, ValueError):
        raise GraphError(100, "A button component needs its index.") from None


def _expect_count(where: str, received: int, expected: int) -> None:
    if received != expected:
        raise GraphError(
            132000,
            f"{where}: number of localizable_params ({received}) does not match the "
            f"expected number of params ({expected})",
        )


def _expect_names(expected: frozenset[str], parameters: list) -> None:
    given = {p.get("parameter_name") for p in parameters if _kind(p) == "text"}
    if given != expected:
        raise GraphError(
            132000, f"named parameters {sorted(map(str, given))} do not match {sorted(expected)}"
        )


def _kind(parameter) -> str:
    return str(parameter.get("type", "")) if isinstance(parameter, dict) else ""

"""Form parsing and page rows for the wizard's senders and mapping steps (no requests here)."""

from campaigns.models import Campaign
from campaigns.services import setup
from templates_app.models import MessageTemplate, PhoneNumber
from titanflow.whatsapp import payloads

SHORT_LIST = 4

STEPS = [
    ("upload", "Upload"),
    ("columns", "Columns"),
    ("senders", "Senders"),
    ("mapping", "Variables"),
    ("review", "Review & launch"),
]


def apply_move(senders: list[dict], move: str) -> list[dict]:
    """`move` is "<phone>:<template>:up|down": swaps that template with its neighbour."""
    try:
        phone_id, template_id, direction = move.split(":")
        phone_id, template_id = int(phone_id), int(template_id)
    except ValueError:
        return senders
    for sender in senders:
        ids = sender["template_ids"]
        if sender["phone_id"] != phone_id or template_id not in ids:
            continue
        index = ids.index(template_id)
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(ids):
            ids[index], ids[other] = ids[other], ids[index]
    return senders


def apply_copy(senders: list[dict], source_phone_id: str, numbers: list[dict]) -> list[dict]:
    """ "Use these templates for every number": the source number's templates, in its order,
    for every other ticked number (every number when none other is ticked), matched by name and
    language, since each account has its own copy of a template."""
    by_phone = {sender["phone_id"]: sender for sender in senders}
    rows = {row["phone"].pk: row for row in numbers}
    source = by_phone.get(_int(source_phone_id))
    if source is None or not source["template_ids"]:
        return senders
    names = _template_keys(rows[source["phone_id"]])
    order = [names[template_id] for template_id in source["template_ids"]]
    targets = [p for p in by_phone if p != source["phone_id"]] or list(rows)
    for phone_id in targets:
        offered = {key: pk for pk, key in _template_keys(rows[phone_id]).items()}
        ids = [offered[key] for key in order if key in offered]
        if ids:
            entry = by_phone.setdefault(phone_id, {"phone_id": phone_id, "mps": None})
            entry["template_ids"] = ids
    return sorted(by_phone.values(), key=lambda s: s["phone_id"])


def _template_keys(row: dict) -> dict[int, tuple[str, str]]:
    return {item["template"].pk: _key(item["template"]) for item in row["templates"]}


def _key(template: MessageTemplate) -> tuple[str, str]:
    return template.name, template.language


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def sender_rows(campaign: Campaign) -> list[dict]:
    """Every number with its account's sendable templates, chosen ones first in their order."""
    chosen = {s.phone_id: s for s in setup.senders_with_templates(campaign=campaign)}
    phones = list(
        PhoneNumber.objects.select_related("account").order_by("display_phone_number", "id")
    )
    templates = _templates_by_account({phone.account_id for phone in phones})
    return [_sender_row(phone, chosen.get(phone.pk), templates) for phone in phones]


def _sender_row(phone: PhoneNumber, sender, templates: dict) -> dict:
    available = templates.get(phone.account_id, [])
    # Positions count only what the page offers (a follow-up may carry a paused template
    # in its order): the marketer sees 1..n for what is chosen.
    offered = {t.pk for t in available}
    slots = list(sender.template_slots.all()) if sender else []
    order = [slot.template_id for slot in slots if slot.template_id in offered]
    ranked = sorted(
        available,
        key=lambda t: (t.pk not in order, order.index(t.pk) if t.pk in order else 0, t.name),
    )
    items = [
        {
            "template": t,
            "position": order.index(t.pk) + 1 if t.pk in order else None,
            "body": body_text(t),
        }
        for t in ranked
    ]
    # The chosen templates and a few others stay in view; the rest fold away.
    shown = max(len(order), SHORT_LIST)
    return {
        "phone": phone,
        "label": _phone_label(phone),
        "used": sender is not None,
        "mps": sender.mps if sender else None,
        "templates": items,
        "shown": items[:shown],
        "more": items[shown:],
        "left_out": [slot.template for slot in slots if slot.template_id not in offered],
    }


def _phone_label(phone: PhoneNumber) -> str:
    """ "Demo Retail · up to 80/s", naming the account too only when it says something more."""
    names = [phone.verified_name]
    if phone.account.name and phone.account.name != phone.verified_name:
        names.append(phone.account.name)
    names.append(f"up to {phone.max_mps}/s")
    return " · ".join(name for name in names if name)


def body_text(template: MessageTemplate) -> str:
    """The template's body as Meta shows it, variables still as {{1}}."""
    for component in template.components or []:
        if str(component.get("type", "")).upper() == "BODY":
            return str(component.get("text") or "")
    return ""


def _templates_by_account(account_ids: set[int]) -> dict[int, list[MessageTemplate]]:
    grouped: dict[int, list[MessageTemplate]] = {}
    for template in (
        MessageTemplate.objects.sendable()
        .filter(account_id__in=account_ids)
        .order_by("name", "language", "id")
    ):
        grouped.setdefault(template.account_id, []).append(template)
    return grouped


def mapping_from_post(data) -> dict:
    """Fields: col__<template>__<slot key> and txt__<template>__<slot key>."""
    mapping: dict[str, dict] = {}
    for field, value in data.items():
        kind, _, rest = field.partition("__")
        if kind not in ("col", "txt") or "__" not in rest:
            continue
        template_id, slot_key = rest.split("__", 1)
        rule = mapping.setdefault(template_id, {}).setdefault(slot_key, {})
        if kind == "col" and value:
            rule["column"] = value
        elif kind == "txt" and value.strip():
            rule["text"] = value.strip()
    for rules in mapping.values():
        for rule in rules.values():
            if "column" in rule:
                rule.pop("text", None)  # a chosen column wins over a typed text
    return mapping


def mapping_rows(campaign: Campaign, errors: dict) -> list[dict]:
    current = campaign.variable_mapping or {}
    rows = []
    for template in setup.chosen_templates(campaign=campaign):
        rules = setup.mapping_suggestion(
            template=template,
            columns=campaign.columns,
            current=current.get(str(template.pk), {}),
            name_column=campaign.name_column,
        )
        template_errors = errors.get(str(template.pk), {})
        rows.append(
            {
                "template": template,
                "preview": payloads.highlight_preview(template.components, {}),
                "slots": [
                    {
                        "slot": slot,
                        "rule": rules.get(slot.key, {}),
                        "error": template_errors.get(slot.key, ""),
                        **_field_hints(template, slot),
                    }
                    for slot in setup.template_slots(template)
                ],
            }
        )
    return rows


def _field_hints(template: MessageTemplate, slot: payloads.Slot) -> dict:
    prefix = url_prefix(template, slot)
    example = slot.example
    if prefix and example.startswith(prefix):
        example = example[len(prefix) :]  # Meta's example is the whole link
    return {"prefix": prefix, "example": example}


def url_prefix(template: MessageTemplate, slot: payloads.Slot) -> str:
    """The fixed start of a URL button's link ("https://shop.test/offer/"): the marketer
    fills only the part after it."""
    if slot.button_sub_type != "url":
        return ""
    for component in template.components or []:
        if str(component.get("type", "")).upper() == "BUTTONS":
            buttons = component.get("buttons") or []
            if slot.button_index is not None and slot.button_index < len(buttons):
                url = str(buttons[slot.button_index].get("url") or "")
                return url.split("{{", 1)[0]
    return ""

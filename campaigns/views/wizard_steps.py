"""Form parsing and page rows for the wizard's senders and mapping steps (no requests here)."""

from campaigns.models import Campaign
from campaigns.services import setup
from templates_app.models import MessageTemplate, PhoneNumber
from titanflow.whatsapp import payloads

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


def sender_rows(campaign: Campaign) -> list[dict]:
    """Every number with its account's sendable templates, chosen ones first in their order."""
    chosen = {s.phone_id: s for s in setup.senders_with_templates(campaign=campaign)}
    phones = list(
        PhoneNumber.objects.select_related("account").order_by("display_phone_number", "id")
    )
    templates = _templates_by_account({phone.account_id for phone in phones})
    rows = []
    for phone in phones:
        sender = chosen.get(phone.pk)
        available = templates.get(phone.account_id, [])
        # Positions count only what the page offers (a follow-up may carry a paused template
        # in its order): the marketer sees 1..n for what is chosen.
        offered = {t.pk for t in available}
        slots = sender.template_slots.all() if sender else []
        order = [slot.template_id for slot in slots if slot.template_id in offered]
        ranked = sorted(
            available,
            key=lambda t: (t.pk not in order, order.index(t.pk) if t.pk in order else 0, t.name),
        )
        rows.append(
            {
                "phone": phone,
                "used": sender is not None,
                "mps": sender.mps if sender else None,
                "templates": [
                    {"template": t, "position": order.index(t.pk) + 1 if t.pk in order else None}
                    for t in ranked
                ],
            }
        )
    return rows


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
        slots = setup.template_slots(template)
        rules = setup.mapping_suggestion(
            template=template, columns=campaign.columns, current=current.get(str(template.pk), {})
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
                    }
                    for slot in slots
                ],
            }
        )
    return rows

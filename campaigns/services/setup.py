"""Building a campaign before launch: create, choose senders and their ordered templates, map
template variables to columns, preview exactly what will be sent, duplicate and delete."""

import math
import re
from dataclasses import dataclass, field

from django.core.files.base import File
from django.db import connection, transaction
from django.db.models import SET_NULL, Prefetch

from campaigns.ab.models import AbTest
from campaigns.engine import guard
from campaigns.engine.pacing import PACE_SHARE
from campaigns.importing import import_enqueue
from campaigns.importing.variables import (
    campaign_refresh_skips,
    contacts_mark_missing_variables,
    missing_counts,
)
from campaigns.models import Campaign, CampaignSender, Contact, Message, SenderTemplate
from campaigns.services.guard_review import campaign_guard_review
from templates_app.models import MessageTemplate, PhoneNumber
from titanflow.whatsapp import payloads

DELETABLE = (*Campaign.EDITABLE, Campaign.Status.COMPLETED, Campaign.Status.CANCELLED)
NAME_MAX_LENGTH = 200
DEDUP_DAYS_MAX = Campaign.DEDUP_DAYS_MAX


class SetupError(ValueError):
    """A setup step refused; the message is a sentence a marketer can act on. `errors` holds
    per-field details (for the mapping: {template id: {slot key: sentence}})."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.errors = errors or {}


@dataclass
class SenderChoice:
    phone: PhoneNumber
    templates: list[MessageTemplate]
    mps: int | None = None
    errors: list[str] = field(default_factory=list)


def _require_editable(campaign: Campaign) -> None:
    if not campaign.is_editable:
        raise SetupError(
            f"This campaign is {campaign.get_status_display().lower()}; "
            "only a draft can be changed."
        )


def _checked_settings(name: str, dedup_days: int) -> tuple[str, int]:
    name = (name or "").strip()
    if not name:
        raise SetupError("Give the campaign a name.")
    if "\x00" in name:
        raise SetupError("The name cannot contain NUL characters.")
    if not 0 <= dedup_days <= DEDUP_DAYS_MAX:
        raise SetupError(
            f"The dedup window is a whole number of days from 0 to {DEDUP_DAYS_MAX:,}."
        )
    return name[:NAME_MAX_LENGTH], dedup_days


def campaign_create(*, name: str, owner, dedup_days: int = 0, max_mps: int | None = None):
    """A new draft; its list, senders and mapping come in the next steps."""
    name, dedup_days = _checked_settings(name, dedup_days)
    return Campaign.objects.create(name=name, owner=owner, dedup_days=dedup_days, max_mps=max_mps)


def campaign_update(*, campaign: Campaign, name: str, dedup_days: int) -> Campaign:
    """Renames a draft or changes its dedup window (which re-imports an imported list)."""
    _require_editable(campaign)
    name, dedup_days = _checked_settings(name, dedup_days)
    reimport = dedup_days != campaign.dedup_days and campaign.source_file
    campaign.name, campaign.dedup_days = name, dedup_days
    campaign.save(update_fields=["name", "dedup_days", "updated_at"])
    if reimport and campaign.phone_column:
        import_enqueue(
            campaign=campaign,
            phone_column=campaign.phone_column,
            name_column=campaign.name_column,
        )
    return campaign


# -- senders -----------------------------------------------------------------------------------


def campaign_set_senders(*, campaign: Campaign, senders: list[dict]) -> list[CampaignSender]:
    """Replaces the campaign's senders: [{"phone_id", "template_ids" (in order), "mps"}].

    Each number sends only approved templates of its own WhatsApp account, tried in the order
    given; `mps` (optional) lowers the number's rate for this campaign."""
    _require_editable(campaign)
    choices = _resolve_senders(senders)
    with transaction.atomic():
        campaign.senders.all().delete()
        created = [_sender_create(campaign, choice) for choice in choices]
        contacts_mark_missing_variables(campaign=campaign)
        campaign_refresh_skips(campaign=campaign)
    return created


def _resolve_senders(senders: list[dict]) -> list[SenderChoice]:
    if not senders:
        raise SetupError("Pick at least one sending number.")
    phone_ids = [int(entry["phone_id"]) for entry in senders]
    if len(set(phone_ids)) != len(phone_ids):
        raise SetupError("Each number can be picked once.")
    phones = PhoneNumber.objects.in_bulk(phone_ids)
    template_ids = {int(t) for entry in senders for t in entry.get("template_ids") or []}
    templates = MessageTemplate.objects.in_bulk(template_ids)
    return [_sender_choice(entry, phones, templates) for entry in senders]


def _sender_choice(entry: dict, phones: dict, templates: dict) -> SenderChoice:
    phone = phones.get(int(entry["phone_id"]))
    if phone is None:
        raise SetupError("One of the chosen numbers no longer exists.")
    ids = [int(t) for t in entry.get("template_ids") or []]
    if not ids:
        raise SetupError(f"Choose at least one template for {phone}.")
    if len(set(ids)) != len(ids):
        raise SetupError(f"A template is listed twice for {phone}.")
    chosen = [templates.get(t) for t in ids]
    for template in chosen:
        _check_template(phone, template)
    mps = entry.get("mps")
    mps = int(mps) if mps not in (None, "") else None
    if mps is not None and not 1 <= mps <= phone.max_mps:
        raise SetupError(f"The rate for {phone} must be between 1 and {phone.max_mps} per second.")
    return SenderChoice(phone=phone, templates=chosen, mps=mps)


def _check_template(phone: PhoneNumber, template: MessageTemplate | None) -> None:
    if template is None:
        raise SetupError("One of the chosen templates no longer exists.")
    if template.account_id != phone.account_id:
        raise SetupError(f"{template} belongs to another WhatsApp account than {phone}.")
    if not template.is_sendable:
        reason = getattr(template, "unavailable_reason", "") or "it is not approved"
        raise SetupError(f"{template} cannot be sent: {reason}")


def _sender_create(campaign: Campaign, choice: SenderChoice) -> CampaignSender:
    sender = CampaignSender.objects.create(
        campaign=campaign,
        phone=choice.phone,
        mps=choice.mps,
        current_template=choice.templates[0],
    )
    SenderTemplate.objects.bulk_create(
        SenderTemplate(sender=sender, template=template, position=position)
        for position, template in enumerate(choice.templates)
    )
    return sender


def senders_with_templates(*, campaign: Campaign) -> list[CampaignSender]:
    """The campaign's senders with phone and ordered template slots loaded (two queries)."""
    slots = SenderTemplate.objects.select_related("template").order_by("position", "id")
    return list(
        campaign.senders.select_related("phone")
        .prefetch_related(Prefetch("template_slots", queryset=slots))
        .order_by("id")
    )


def chosen_templates(
    *, campaign: Campaign, senders: list[CampaignSender] | None = None
) -> list[MessageTemplate]:
    """Each template any sender uses, once, in the order they first appear. `senders`: the
    result of `senders_with_templates`, when the caller has it already."""
    seen: dict[int, MessageTemplate] = {}
    if senders is None:
        senders = senders_with_templates(campaign=campaign)
    for sender in senders:
        for slot in sender.template_slots.all():
            seen.setdefault(slot.template_id, slot.template)
    return list(seen.values())


# -- variable mapping --------------------------------------------------------------------------


def template_slots(template: MessageTemplate) -> list[payloads.Slot]:
    if template.slots:
        return [payloads.Slot.from_dict(slot) for slot in template.slots]
    return payloads.parse_slots(template.components, template.parameter_format)


def mapping_errors(*, template: MessageTemplate, rules: dict, columns: list[str]) -> dict[str, str]:
    """Per slot key, why the rule cannot fill it; empty when every slot is filled."""
    errors = {}
    for slot in template_slots(template):
        rule = rules.get(slot.key) or {}
        column, text = rule.get("column") or "", (rule.get("text") or "").strip()
        if column and column not in columns:
            errors[slot.key] = f"The list has no column “{column}”."
        elif not column and not text:
            errors[slot.key] = f"Choose a column or type a text for {slot.label}."
        elif "\x00" in text:
            errors[slot.key] = "The text cannot contain NUL characters."
        elif slot.kind in ("image", "video", "document") and text[:8] not in ("", "https://"):
            errors[slot.key] = "A media header needs an https:// link."
    return errors


def _clean_rules(template: MessageTemplate, rules: dict) -> dict:
    clean = {}
    for slot in template_slots(template):
        rule = rules.get(slot.key) or {}
        if rule.get("column"):
            clean[slot.key] = {"column": rule["column"]}
            if (rule.get("default") or "").strip():
                clean[slot.key]["default"] = rule["default"].strip()
        elif (rule.get("text") or "").strip():
            clean[slot.key] = {"text": rule["text"].strip()}
    return clean


def campaign_set_mapping(*, campaign: Campaign, mapping: dict) -> dict:
    """Validates and stores {template id: {slot key: {"column"} | {"text"}}} for the chosen
    templates, then skips the rows no chosen template can fill. Raises SetupError with
    per-slot `errors` when a slot is left unfilled."""
    _require_editable(campaign)
    templates = chosen_templates(campaign=campaign)
    if not templates:
        raise SetupError("Choose the sending numbers and their templates first.")
    errors, clean = {}, {}
    for template in templates:
        rules = mapping.get(str(template.pk)) or mapping.get(template.pk) or {}
        problems = mapping_errors(template=template, rules=rules, columns=campaign.columns)
        if problems:
            errors[str(template.pk)] = problems
        clean[str(template.pk)] = _clean_rules(template, rules)
    if errors:
        raise SetupError("Some template variables have no value yet.", errors)
    with transaction.atomic():
        campaign.variable_mapping = clean
        campaign.save(update_fields=["variable_mapping", "updated_at"])
        contacts_mark_missing_variables(campaign=campaign)
        campaign_refresh_skips(campaign=campaign)
    return clean


_NAME_VARIABLES = ("name", "firstname", "fullname", "customername", "contactname")


def _comparable(label: str) -> str:
    """ "Full Name", "full_name" and "full-name" compare equal."""
    return re.sub(r"[\s_\-.]+", "", label.lower())


# "Hi {{1}}", "Dear {{1}}", "مرحبا {{1}}", or a body opening with "{{1}}," address the person.
_GREETING = re.compile(r"(?:\b(?:hi|hello|hey|dear|welcome)|مرحبا)[\s,]+$", re.IGNORECASE)


def _means_the_name(template: MessageTemplate, slot: payloads.Slot) -> bool:
    if _comparable(slot.name) in _NAME_VARIABLES:
        return True
    if slot.component != "body" or not slot.name.isdigit():
        return False
    body = next(
        (str(c.get("text") or "") for c in template.components or [] if c.get("type") == "BODY"),
        "",
    )
    found = re.search(r"\{\{\s*" + re.escape(slot.name) + r"\s*\}\}", body)
    if found is None:
        return False
    before, after = body[: found.start()], body[found.end() :]
    return bool(_GREETING.search(before)) or (not before.strip() and after[:1] in ",،!")


def mapping_suggestion(
    *, template: MessageTemplate, columns: list[str], current: dict, name_column: str = ""
) -> dict:
    """The stored rules, else a column named like the variable, case, spaces and underscores
    aside; a variable meaning the person's name ("first_name", "name", or the {{1}} of
    "Hi {{1}},") takes the list's name column. Suggested rules carry "suggested": True (pages
    say so; saving drops the flag)."""
    by_label = {_comparable(column): column for column in reversed(columns)}
    rules = {}
    for slot in template_slots(template):
        if slot.key in current:
            rules[slot.key] = current[slot.key]
            continue
        column = by_label.get(_comparable(slot.name))
        if column is None and _means_the_name(template, slot):
            column = name_column or next(
                (by_label[label] for label in _NAME_VARIABLES if label in by_label), None
            )
        if column:
            rules[slot.key] = {"column": column, "suggested": True}
    return rules


# -- preview and review ------------------------------------------------------------------------


def campaign_preview(
    *, campaign: Campaign, limit: int = 3, senders: list[CampaignSender] | None = None
) -> list[dict]:
    """For each chosen template Meta lets us send, the first `limit` sendable contacts'
    messages exactly as the engine will build them: [{"template", "phone", "contact",
    "payload", "rendered", "missing"}]. `payload` is None (and `missing` lists slot keys) when a
    row cannot fill it. A paused or refused template gets no sample: see
    `templates_unavailable`."""
    contacts = list(
        Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).order_by("id")[
            : max(limit, 0)
        ]
    )
    if senders is None:
        senders = senders_with_templates(campaign=campaign)
    first_phone = _first_phone_by_template(senders)
    samples = []
    for template in chosen_templates(campaign=campaign, senders=senders):
        if not template.is_sendable:
            continue
        rules = (campaign.variable_mapping or {}).get(str(template.pk), {})
        for contact in contacts:
            samples.append(_sample(template, first_phone[template.pk], contact, rules))
    return samples


def _first_phone_by_template(senders: list[CampaignSender]) -> dict[int, PhoneNumber]:
    phones = {}
    for sender in senders:
        for slot in sender.template_slots.all():
            phones.setdefault(slot.template_id, sender.phone)
    return phones


def templates_unavailable(*, senders: list[CampaignSender]) -> list[dict]:
    """Each chosen template Meta no longer lets us send (paused, rejected, disabled...), per
    number: [{"template", "phone", "reason", "instead"}], `instead` being the template that
    number will send (its first usable one in the marketer's order), or None."""
    rows = []
    for sender in senders:
        slots = list(sender.template_slots.all())
        instead = next(
            (s.template for s in slots if s.template.is_sendable and s.failed_code is None), None
        )
        rows.extend(
            {
                "template": slot.template,
                "phone": sender.phone,
                "reason": slot.template.unavailable_reason,
                "instead": instead,
            }
            for slot in slots
            if not slot.template.is_sendable
        )
    return rows


def _sample(template: MessageTemplate, phone, contact: Contact, rules: dict) -> dict:
    slots = template_slots(template)
    values = payloads.resolve_values(slots, rules, contact.variables)
    try:
        payload = payloads.build_template_payload(
            name=template.name,
            language=template.language,
            components=template.components,
            parameter_format=template.parameter_format,
            values=values,
            to=contact.phone,
            slots=slots,
        )
        missing = []
    except payloads.MissingVariableError as exc:
        payload, missing = None, exc.slot_keys
    return {
        "template": template,
        "phone": phone,
        "contact": contact,
        "payload": payload,
        "rendered": payloads.highlight_preview(template.components, values),
        "missing": missing,
    }


def campaign_estimate(*, campaign: Campaign, pending: int | None = None) -> dict:
    """Sendable contacts, the rate the engine will actually send at, and the duration it implies.

    The rate is what the pacer grants: each active sender's number at its allowed rate (or the
    lower one chosen for it), the campaign's cap over their sum, and of that the share the
    pacer aims at to stay clear of Meta's 130429."""
    if pending is None:
        pending = Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).count()
    senders = campaign.senders.filter(state=CampaignSender.State.ACTIVE).select_related("phone")
    rate = sum(_guarded_rate(sender) for sender in senders.order_by("id"))
    if campaign.max_mps:
        rate = min(rate, campaign.max_mps)
    rate *= PACE_SHARE
    seconds = math.ceil(pending / rate) if rate else None
    shown = round(rate, 1)
    return {
        "pending": pending,
        "rate": int(shown) if shown.is_integer() else shown,
        "seconds": seconds,
    }


def _guarded_rate(sender: CampaignSender) -> float:
    """The sender's rate as the guard lets it send now: none while its number is RED or
    flagged, slowed while it is YELLOW."""
    phone = sender.phone
    if guard.quality_stop_reason(quality=phone.quality_rating or "", status=phone.status or ""):
        return 0
    rate = max(min(sender.mps or phone.max_mps, phone.max_mps), 1)
    return guard.quality_rate(rate=rate, quality=phone.quality_rating or "")


def quality_notices(senders) -> list[tuple]:
    """(sender, what the guard does with its number) for each chosen number it slows or stops."""
    notices = [(sender, guard.quality_notice(sender.phone)) for sender in senders]
    return [(sender, notice) for sender, notice in notices if notice]


def campaign_review(*, campaign: Campaign) -> dict:
    """Everything the review step shows: counts, per-template gaps, estimate and samples."""
    pending = Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).count()
    gaps = missing_counts(campaign=campaign)
    senders = senders_with_templates(campaign=campaign)
    templates = [t for t in chosen_templates(campaign=campaign, senders=senders) if t.is_sendable]
    estimate = campaign_estimate(campaign=campaign, pending=pending)
    return {
        "pending": pending,
        "total": campaign.total_count,
        "skipped": campaign.skipped_count,
        "skipped_by_reason": (campaign.import_report or {}).get("skipped", {}),
        "missing_by_template": [(t, gaps.get(t.pk, 0)) for t in templates],
        "estimate": estimate,
        "samples": campaign_preview(campaign=campaign, senders=senders),
        "unavailable": templates_unavailable(senders=senders),
        "quality": quality_notices(senders),
        "guard": campaign_guard_review(campaign=campaign, estimate_seconds=estimate["seconds"]),
    }


# -- duplicate and delete ----------------------------------------------------------------------


def campaign_duplicate(*, campaign: Campaign, user) -> Campaign:
    """A new draft with the same settings, senders, templates and mapping; the same uploaded
    list is imported again (so today's opt-outs and dedup window apply)."""
    with transaction.atomic():
        copy = Campaign.objects.create(
            name=f"Copy of {campaign.name}"[:200],
            owner=user,
            dedup_days=campaign.dedup_days,
            max_mps=campaign.max_mps,
            variable_mapping=campaign.variable_mapping,
            columns=campaign.columns,
            phone_column=campaign.phone_column,
            name_column=campaign.name_column,
            phone_region=campaign.phone_region,
        )
        for sender in senders_with_templates(campaign=campaign):
            _sender_create(
                copy,
                SenderChoice(
                    phone=sender.phone,
                    templates=[slot.template for slot in sender.template_slots.all()],
                    mps=sender.mps,
                ),
            )
        test = AbTest.objects.filter(campaign=campaign).first()
        if test is not None:
            test.copy_to(copy)
        if campaign.source_file and campaign.source_file.storage.exists(campaign.source_file.name):
            _copy_file(campaign, copy)
    return copy


def _copy_file(source: Campaign, target: Campaign) -> None:
    with source.source_file.open("rb") as handle:
        target.source_name = source.source_name
        target.source_file.save(source.source_name, File(handle), save=False)
    target.save(update_fields=["source_file", "source_name"])
    if target.phone_column in target.columns:
        import_enqueue(
            campaign=target, phone_column=target.phone_column, name_column=target.name_column
        )


def campaign_delete(*, campaign: Campaign) -> None:
    """Deletes a campaign that is not sending, with its contacts and its uploaded file."""
    if campaign.status not in DELETABLE:
        raise SetupError(
            f"This campaign is {campaign.get_status_display().lower()}; cancel it before "
            "deleting it."
        )
    name = campaign.source_file.name
    storage = campaign.source_file.storage
    with transaction.atomic(), connection.cursor() as cursor:
        # Set-based: the ORM's cascade would load every contact and message into memory.
        for table, column in _rows_pointing_at_messages():
            cursor.execute(
                f"UPDATE {table} SET {column} = NULL WHERE {column} IN"
                " (SELECT id FROM campaigns_message WHERE campaign_id = %s)",
                [campaign.pk],
            )
        for table in ("campaigns_message", "campaigns_contact"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
        campaign.delete()
        if name:
            transaction.on_commit(lambda: storage.delete(name))


def _rows_pointing_at_messages() -> list[tuple[str, str]]:
    """Tables of higher apps (inbox replies) that keep a nullable link to a campaign message."""
    return [
        (relation.related_model._meta.db_table, relation.field.column)
        for relation in Message._meta.related_objects
        if relation.on_delete is SET_NULL
    ]

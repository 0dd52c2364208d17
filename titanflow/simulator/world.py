"""What the simulated Meta knows: WhatsApp business accounts, their phone numbers and templates.

A world is plain data. It loads from JSON (`World.from_dict`) in one flat shape, the same one
`POST /_sim/world` accepts and `GET /_sim/world` answers:

    {"accounts":  [{"waba_id", "name", "access_token", "messaging_limit"}],
     "phones":    [{"phone_number_id", "waba_id", "display_phone_number", "verified_name",
                    "quality_rating", "status", "throughput_level", "messaging_limit", "max_mps"}],
     "templates": [{"id", "waba_id", "name", "language", "category", "status", "components",
                    "parameter_format", "quality_score"}]}

Only the identifiers (and a template's name and language) are required; `max_mps` defaults from
the throughput level (STANDARD 80, HIGH 1,000) and a template id is generated when absent.
"""

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from titanflow.simulator.demo import demo_world_dict

THROUGHPUT_MPS = {"STANDARD": 80, "HIGH": 1000}
MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document", "LOCATION": "location"}
SENDABLE_STATUSES = {"APPROVED", "FLAGGED"}  # a flagged template still sends until Meta pauses it
_NON_DIGITS = re.compile(r"[^0-9]+")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def digits(value: str) -> str:
    """A phone number as WhatsApp ids carry it: "+971 50-1" → "971501"."""
    return value if value.isascii() and value.isdigit() else _NON_DIGITS.sub("", value)


def tier_limit(tier: str) -> int | None:
    """Meta's tier name as a number of recipients: "TIER_2K" → 2000; unlimited (or a name the
    simulator does not know) → None."""
    value = tier.upper().removeprefix("TIER_")
    multiplier = 1000 if value.endswith("K") else 1
    value = value.removesuffix("K")
    return int(value) * multiplier if value.isdigit() else None


class WorldError(ValueError):
    """A world description that cannot be loaded; the message names the entry and field."""


@dataclass
class Account:
    waba_id: str
    name: str = ""
    access_token: str = ""
    # The business portfolio's messaging limit, shared by its numbers ("TIER_250"...); empty:
    # the highest tier among its numbers, as the per-number fields said before the portfolio's.
    messaging_limit: str = ""


@dataclass
class Phone:
    phone_number_id: str
    waba_id: str
    display_phone_number: str = ""
    verified_name: str = ""
    quality_rating: str = "GREEN"
    status: str = "CONNECTED"
    throughput_level: str = "STANDARD"
    messaging_limit: str = "TIER_2K"
    max_mps: int = 0

    def __post_init__(self):
        if not self.max_mps:
            self.max_mps = THROUGHPUT_MPS.get(self.throughput_level, 80)

    @property
    def display_digits(self) -> str:
        """The number as webhook metadata carries it: digits only."""
        return digits(self.display_phone_number)


@dataclass(frozen=True)
class Slots:
    """What a send must supply for one template: parameter counts per component."""

    header: int = 0
    header_media: str | None = None
    body: int = 0
    buttons: tuple[tuple[int, int], ...] = ()  # (button index, parameter count)
    names: frozenset[str] = frozenset()  # NAMED templates: every placeholder name


@dataclass
class Template:
    waba_id: str
    name: str
    language: str
    id: str = ""
    category: str = "MARKETING"
    status: str = "APPROVED"
    components: list = field(default_factory=list)
    parameter_format: str = "POSITIONAL"
    quality_score: str = "GREEN"

    def __post_init__(self):
        self.slots = template_slots(self.components)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.waba_id, self.name, self.language)


def template_slots(components: list) -> Slots:
    header, media, body, buttons, names = 0, None, 0, [], set()
    for component in components:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            media = MEDIA_FORMATS.get(str(component.get("format", "TEXT")).upper())
            found = _PLACEHOLDER.findall(component.get("text", ""))
            header = 1 if media else len(found)
            names.update(found)
        elif kind == "BODY":
            found = _PLACEHOLDER.findall(component.get("text", ""))
            body = len(found)
            names.update(found)
        elif kind == "BUTTONS":
            buttons = _button_slots(component.get("buttons", []))
    named = frozenset(n for n in names if not n.isdigit())
    return Slots(header, media, body, tuple(buttons), named)


def _button_slots(buttons: list) -> list[tuple[int, int]]:
    slots = []
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        has_variable = kind == "URL" and _PLACEHOLDER.search(button.get("url", ""))
        if has_variable or kind in ("COPY_CODE", "OTP"):
            slots.append((index, 1))
    return slots


class World:
    """Accounts, phones and templates, indexed the way the send path looks them up."""

    def __init__(self):
        self.accounts: dict[str, Account] = {}
        self.phones: dict[str, Phone] = {}
        self.templates: dict[str, Template] = {}
        self._by_key: dict[tuple[str, str, str], Template] = {}
        self._next_template_id = 300000000000001

    @classmethod
    def from_dict(cls, data: dict) -> "World":
        world = cls()
        world.merge(data)
        return world

    def to_dict(self) -> dict:
        return {
            "accounts": [asdict(a) for a in self.accounts.values()],
            "phones": [asdict(p) for p in self.phones.values()],
            "templates": [asdict(t) for t in self.templates.values()],
        }

    def merge(self, data: dict) -> None:
        """Add or replace (by identifier) every account, phone and template in `data`.

        All or nothing: a bad entry raises WorldError and leaves the world as it was.
        """
        if not isinstance(data, dict):
            raise WorldError("a world is a JSON object with accounts, phones and templates")
        _reject_unknown(data, {"accounts", "phones", "templates"}, "world")
        accounts = _build_all(Account, data, "accounts")
        phones = _build_all(Phone, data, "phones")
        templates = _build_all(Template, data, "templates")
        known = set(self.accounts) | {account.waba_id for _, account in accounts}
        for where, item in phones + templates:
            if item.waba_id not in known:
                raise WorldError(f"{where}.waba_id: no account {item.waba_id!r} in the world")
        for _, account in accounts:
            self.accounts[account.waba_id] = account
        for _, phone in phones:
            self.phones[phone.phone_number_id] = phone
        for _, template in templates:
            self._add_template(template)

    def _add_template(self, template: Template) -> None:
        previous = self._by_key.get(template.key)
        if not template.id:
            template.id = previous.id if previous else self._new_template_id()
        if previous and previous.id != template.id:
            del self.templates[previous.id]
        replaced = self.templates.get(template.id)
        if replaced and replaced.key != template.key:
            del self._by_key[replaced.key]
        self.templates[template.id] = template
        self._by_key[template.key] = template

    def _new_template_id(self) -> str:
        while str(self._next_template_id) in self.templates:
            self._next_template_id += 1
        self._next_template_id += 1
        return str(self._next_template_id - 1)

    def template(self, waba_id: str, name: str, language: str) -> Template | None:
        return self._by_key.get((waba_id, name, language))

    def templates_of(self, waba_id: str) -> list[Template]:
        return [t for t in self.templates.values() if t.waba_id == waba_id]

    def phones_of(self, waba_id: str) -> list[Phone]:
        return [p for p in self.phones.values() if p.waba_id == waba_id]

    def portfolio_limit(self, waba_id: str) -> int | None:
        """Unique recipients the portfolio may reach per rolling 24 h; None: unlimited."""
        account = self.accounts.get(waba_id)
        if account is not None and account.messaging_limit:
            return tier_limit(account.messaging_limit)
        tiers = [tier_limit(p.messaging_limit) for p in self.phones_of(waba_id)]
        return None if not tiers or None in tiers else max(tiers)

    def owner(self, node_id: str) -> Account | None:
        """The account a phone number id or WABA id belongs to."""
        phone = self.phones.get(node_id)
        return self.accounts.get(phone.waba_id if phone else node_id)


def _build_all(kind: type, data: dict, key: str) -> list[tuple[str, Any]]:
    raws = data.get(key, [])
    if not isinstance(raws, list):
        raise WorldError(f"{key}: must be a list")
    return [(f"{key}[{i}]", _build(kind, raw, f"{key}[{i}]")) for i, raw in enumerate(raws)]


def _reject_unknown(raw: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise WorldError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _build(kind: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise WorldError(f"{where}: must be an object")
    types = {f.name: f.type for f in fields(kind)}
    _reject_unknown(raw, set(types), where)
    for name, value in raw.items():
        expected = {"int": int, "list": list}.get(getattr(types[name], "__name__", ""), str)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise WorldError(f"{where}.{name}: must be {expected.__name__}")
    try:
        return kind(**raw)
    except TypeError as exc:  # a required identifier is missing
        raise WorldError(f"{where}: {exc}") from None


def default_world(*, access_token: str = "demo-token") -> World:
    """The demo: one WABA "Demo Retail", three UAE numbers and a realistic set of templates."""
    return World.from_dict(demo_world_dict(access_token=access_token))

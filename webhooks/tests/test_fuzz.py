"""Deliveries with values swapped for hostile ones, through the real processor.

Each case takes a delivery's shape (Meta's recorded ones, or the project's own), replaces a few
values under its entries with another type, a huge or very long value, NUL or invalid UTF-8,
and adds one entry reporting a real campaign message delivered. Whatever the mutation, nothing
may escape the processor, every delivery must be applied (none left failing in the database),
and the good status in it must move its message forward. Seeded, so a failure replays.
"""

import copy
import json
import random
import re

import pytest

from campaigns.models import Campaign, Contact, Message
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    TemplateFactory,
)
from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process
from webhooks.tests import deliveries as d
from webhooks.tests.records import messages_sent

pytestmark = pytest.mark.django_db

SEED = 13
CASES_PER_SHAPE = 8
AT = 1_700_000_000
INVALID_UTF8_MARK = "@@invalid-utf8@@"
# A note made from an exception means parsing met a shape it did not foresee.
UNFORESEEN = re.compile(r"\b\w+(Error|Exception): ")
HOSTILE_VALUES = [
    "text",
    "",
    "1e20",
    "-1",
    None,
    True,
    0,
    -1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    10**1000,
    1e20,
    1e308,
    [],
    ["x", {}],
    {},
    {"nested": {"deeper": [1]}},
    "9" * 1000,
    "long " * 5000,
    "a\x00b",
    "\x00",
    "\ud800",
    INVALID_UTF8_MARK,
]


def _project_shapes() -> dict[str, dict]:
    """Every kind of item the processor applies, as the project's own fixtures write them."""
    account_update = lambda **value: d.envelope(("account_update", value), at=AT)  # noqa: E731
    return {
        "statuses": d.statuses(
            d.status("wamid.FX1", "read", at=AT, callback="c:1"),
            d.status("wamid.FX2", "failed", at=AT, error=(131026, "Undeliverable")),
        ),
        "text": d.incoming("wamid.FI1", text="STOP", context="wamid.FX1", at=AT),
        "button": d.incoming(
            "wamid.FI2",
            kind="interactive",
            part={"type": "button_reply", "button_reply": {"id": "b1", "title": "Yes"}},
            at=AT,
        ),
        "contacts": d.incoming(
            "wamid.FI3", kind="contacts", part=[{"name": {"formatted_name": "Ana"}}], at=AT
        ),
        "edit": d.incoming(
            "wamid.FI4",
            kind="edit",
            part={"message": {"type": "text", "text": {"body": "fixed"}}},
            at=AT,
        ),
        "template": d.template_status("555", "PAUSED", at=AT),
        "category": d.envelope(
            (
                "template_category_update",
                {
                    "message_template_id": 555,
                    "previous_category": "UTILITY",
                    "new_category": "MARKETING",
                },
            ),
            at=AT,
        ),
        "phone": d.envelope(
            (
                "phone_number_quality_update",
                {
                    "display_phone_number": d.DISPLAY_NUMBER,
                    "event": "THROUGHPUT_UPGRADE",
                    "current_limit": "TIER_10K",
                },
            ),
            at=AT,
        ),
        "ban": account_update(event="DISABLED_UPDATE", ban_info={"waba_ban_state": "DISABLE"}),
        "violation": account_update(
            event="ACCOUNT_VIOLATION", violation_info={"violation_type": "SPAM"}
        ),
        "restriction": account_update(
            event="ACCOUNT_RESTRICTION", restriction_info=[{"restriction_type": "X"}]
        ),
        "preference": d.preference("971500000009", "stop"),
    }


def _meta_shapes(shared_dir) -> dict[str, dict]:
    folder = shared_dir / "fixtures" / "meta-webhooks-pywa"
    shapes = {}
    for path in sorted(folder.glob("*.json")):
        for case, delivery in json.loads(path.read_text()).items():
            shapes[f"{path.stem}:{case}"] = delivery
    return shapes


def _node_paths(value, path=()):
    if path:
        yield path
    if isinstance(value, dict | list):
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            yield from _node_paths(child, (*path, key))


def _replace(root, path, new) -> None:
    parent = root
    try:
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]]  # an earlier swap may have removed this node
    except (KeyError, IndexError, TypeError):
        return
    if isinstance(parent, dict | list):
        parent[path[-1]] = new


def _mutated_entries(delivery: dict, rng: random.Random) -> list:
    entries = copy.deepcopy(delivery.get("entry") or [])
    paths = list(_node_paths(entries))
    for path in rng.sample(paths, k=min(len(paths), rng.randint(1, 3))):
        _replace(entries, path, copy.deepcopy(rng.choice(HOSTILE_VALUES)))
    return entries


def _body(entries: list, good_wamid: str) -> bytes:
    good = d.statuses(d.status(good_wamid, "delivered", at=AT))["entry"]
    delivery = {"object": "whatsapp_business_account", "entry": [*entries, *good]}
    body = json.dumps(delivery).encode()
    return body.replace(INVALID_UTF8_MARK.encode(), b"\xff\xfe\xfd")


def _good_messages(count: int) -> list[Message]:
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    return messages_sent(campaign, PhoneFactory(), count, wamid_prefix="wamid.GOOD", dial="+4470")


def _fuzz(shapes: dict[str, dict]) -> None:
    rng = random.Random(SEED)
    cases = [(name, shape) for name, shape in shapes.items() for _ in range(CASES_PER_SHAPE)]
    good = _good_messages(len(cases))
    labels = {}
    for (name, shape), message in zip(cases, good, strict=True):
        WebhookEvent.store(_body(_mutated_entries(shape, rng), message.wamid))
        labels[message.wamid] = name

    deliveries_process(time_budget_s=120)

    events = list(WebhookEvent.objects.order_by("id"))
    assert len(events) == len(cases)
    for event in events:
        assert event.processed_at is not None and event.attempts == 0, event.error
        assert not UNFORESEEN.search(event.error), event.error
    stuck = Message.objects.filter(pk__in=[m.pk for m in good]).exclude(status="delivered")
    assert [labels[m.wamid] for m in stuck] == []


def _project_world() -> None:
    """The account, number, template and messages the project's shapes name."""
    account = AccountFactory(waba_id=d.WABA_ID)
    phone = PhoneFactory(
        account=account, phone_number_id=d.PHONE_NUMBER_ID, display_phone_number="+1 555 000 0001"
    )
    template = TemplateFactory(account=account, meta_template_id="555")
    for wamid in ("wamid.FX1", "wamid.FX2"):
        MessageFactory(phone=phone, template=template, wamid=wamid, recipient="+971500000001")


def _meta_world() -> None:
    """The accounts, numbers, templates and messages Meta's recorded deliveries name."""
    main = AccountFactory(waba_id="102290129340398")
    phone = PhoneFactory(
        account=main, phone_number_id="106540352242922", display_phone_number="+1 555 078 3881"
    )
    for meta_id in ("1689556908129832", "1689556908129835", "806312974732579", "12345678"):
        TemplateFactory(account=main, meta_template_id=meta_id)
    contact = ContactFactory(phone="+972987654321", state=Contact.State.SENT)
    for wamid in ("wamid.xyzxyz", "wamid.xyzxyz=="):
        MessageFactory(contact=contact, phone=phone, wamid=wamid)


def test_hostile_values_in_the_projects_shapes_never_sink_a_delivery():
    _project_world()
    _fuzz(_project_shapes())


def test_hostile_values_in_metas_recorded_shapes_never_sink_a_delivery(shared_dir):
    _meta_world()
    _fuzz(_meta_shapes(shared_dir))

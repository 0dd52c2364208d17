"""One bad item in a delivery costs that item only: the rest of the delivery is applied."""

import pytest

from campaigns.models import Campaign, Contact, Message, OptOut
from inbox.models import InboxMessage
from templates_app.models import WhatsAppAccount
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
)
from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process
from webhooks.tests import deliveries as d

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(phone):
    """Makes campaign messages Meta has not reported on yet."""
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)

    def make(count: int = 1) -> list[Message]:
        return [
            MessageFactory(
                contact=ContactFactory(campaign=campaign, state=Contact.State.SENT),
                campaign=campaign,
                phone=phone,
            )
            for _ in range(count)
        ]

    return make


def _with_good_status(delivery: dict, message: Message) -> dict:
    """The delivery plus one entry reporting `message` delivered."""
    good = d.statuses(d.status(message.wamid, "delivered"))
    return {**delivery, "entry": [*delivery["entry"], *good["entry"]]}


def _process(post_delivery, body) -> WebhookEvent:
    assert post_delivery(body).status_code == 200
    deliveries_process()
    event = WebhookEvent.objects.order_by("-id").first()
    assert event.processed_at is not None, event.error
    return event


def _value(delivery: dict) -> dict:
    return delivery["entry"][0]["changes"][0]["value"]


def test_twenty_statuses_and_one_with_timestamp_1e20_apply_all_twenty(post_delivery, sent):
    messages = sent(20)
    items = [d.status(m.wamid, "delivered") for m in messages]
    bad = d.status("wamid.NOT_OURS", "delivered")
    bad["timestamp"] = 1e20
    _process(post_delivery, d.statuses(*items[:10], bad, *items[10:]))
    assert Message.objects.filter(status="delivered").count() == 20


def test_twenty_incoming_and_one_with_timestamp_1e20_store_all_twenty(post_delivery, phone):
    delivery = d.incoming("wamid.IN0")
    value = _value(delivery)
    value["messages"] = [
        {**value["messages"][0], "id": f"wamid.IN{n}", "timestamp": "1700000000"} for n in range(20)
    ]
    value["messages"].insert(7, {**value["messages"][0], "id": "wamid.BAD", "timestamp": 1e20})
    _process(post_delivery, delivery)
    stored = set(InboxMessage.objects.values_list("wamid", flat=True))
    assert {f"wamid.IN{n}" for n in range(20)} <= stored


def _incoming(**kwargs) -> dict:
    return d.incoming("wamid.HOSTILE", **kwargs)


def _mutated(delivery: dict, mutate) -> dict:
    mutate(delivery)
    return delivery


def _status_delivery(**fields) -> dict:
    return d.statuses({**d.status("wamid.ELSEWHERE", "failed", error=(131026, "x")), **fields})


def _account_update(event: str, **fields) -> dict:
    return d.envelope(("account_update", {"event": event, **fields}))


HOSTILE = {
    "metadata is a string": _mutated(
        _status_delivery(), lambda x: _value(x).update(metadata="290000000000001")
    ),
    "profile is a string": _mutated(
        _incoming(), lambda x: _value(x)["contacts"][0].update(profile="Layla")
    ),
    "context is a string": _mutated(
        _incoming(), lambda x: _value(x)["messages"][0].update(context="wamid.X")
    ),
    "error_data is a string": _status_delivery(
        errors=[{"code": 131026, "title": "x", "error_data": "details"}]
    ),
    "button_reply is a string": _incoming(
        kind="interactive", part={"type": "button_reply", "button_reply": "Yes"}
    ),
    "contacts name is a string": _incoming(kind="contacts", part=[{"name": "Ana"}]),
    "edit message is a string": _incoming(kind="edit", part={"message": "hello"}),
    "ban_info is a string": _account_update("DISABLED_UPDATE", ban_info="DISABLE"),
    "violation_info is a string": _account_update("ACCOUNT_VIOLATION", violation_info="SPAM"),
    "restriction_info is a string": _account_update("ACCOUNT_RESTRICTION", restriction_info="x"),
    "NUL in a text": _incoming(text="hel\x00lo"),
    "NUL in an error title": _status_delivery(errors=[{"code": 131026, "title": "a\x00b"}]),
    "NUL in a template name": d.envelope(
        ("message_template_status_update", {"event": "PAUSED", "message_template_name": "a\x00"})
    ),
    "timestamp -1": _incoming(at=-1),
    "timestamp 10**30": _mutated(
        _incoming(), lambda x: _value(x)["messages"][0].update(timestamp=10**30)
    ),
    "entry time 10**30": _mutated(
        d.template_status("1", "PAUSED"), lambda x: x["entry"][0].update(time=10**30)
    ),
    "64-bit error code": _status_delivery(errors=[{"code": 2**62, "title": "x"}]),
    "1,000-digit error code": _status_delivery(errors=[{"code": 10**1000, "title": "x"}]),
    "1,000-digit wa_id saying STOP": _incoming(wa_id="9" * 1000, text="STOP"),
    "1,000-digit wa_id opting out": d.preference("9" * 1000, "stop"),
    "statuses is an object": _mutated(_status_delivery(), lambda x: _value(x).update(statuses={})),
    "a status is a string": _mutated(
        _status_delivery(), lambda x: _value(x)["statuses"].append("wamid.X")
    ),
    "value is a list": _mutated(
        _incoming(), lambda x: x["entry"][0]["changes"][0].update(value=[])
    ),
    "category is an object": d.envelope(
        ("template_category_update", {"message_template_id": 1, "new_category": {"a": 1}})
    ),
}


@pytest.mark.parametrize("delivery", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_item_does_not_stop_the_rest_of_its_delivery(post_delivery, sent, delivery):
    (message,) = sent(1)
    event = _process(post_delivery, d.encode(_with_good_status(delivery, message)))
    assert Message.objects.get(pk=message.pk).status == "delivered", event.error


def test_nul_bytes_are_stripped_from_what_is_stored(post_delivery, phone):
    _process(post_delivery, _incoming(text="hel\x00lo", name="La\x00yla"))
    message = InboxMessage.objects.get()
    assert (message.body, message.conversation.contact_name) == ("hello", "Layla")
    assert message.raw["text"]["body"] == "hello"


def test_an_error_code_beyond_int32_is_dropped_and_the_failure_kept(post_delivery, sent):
    (message,) = sent(1)
    delivery = d.statuses(d.status(message.wamid, "failed", error=(2**62, "Too big a code")))
    _process(post_delivery, delivery)
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_title) == (
        "failed",
        None,
        "Too big a code",
    )


def test_a_timestamp_out_of_range_is_stamped_with_our_clock(post_delivery, phone):
    _process(post_delivery, _incoming(at=-1))
    assert InboxMessage.objects.get().timestamp.year >= 2026


def test_a_wa_id_that_is_no_phone_number_records_no_opt_out(post_delivery, phone):
    _process(post_delivery, d.preference("9" * 1000, "stop"))
    _process(post_delivery, _incoming(wa_id="٩٧١٥٠٠٠٠٠٠٠١", text="STOP"))
    assert not OptOut.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        # Invalid UTF-8 and a lone surrogate: orjson refuses both, the stdlib reads them.
        d.encode(_incoming(text="BAD")).replace(b'"BAD"', b'"\xff\xfe"'),
        d.encode(_incoming(text="BAD")).replace(b'"BAD"', b'"\\ud800"'),
        # Numbers beyond a double and beyond Python's 4,300-digit conversion limit.
        d.encode(_incoming(text="BAD")).replace(b'"BAD"', b"1e400"),
        d.encode(_incoming(text="BAD")).replace(b'"BAD"', b"9" * 5000),
    ],
    ids=["invalid UTF-8", "lone surrogate", "1e400", "5,000 digits"],
)
def test_bytes_orjson_refuses_are_read_leniently(post_delivery, phone, body):
    event = _process(post_delivery, body)
    assert event.error == ""
    assert InboxMessage.objects.get().wamid == "wamid.HOSTILE"


def test_skipped_items_are_noted_on_the_delivery(post_delivery, sent):
    (message,) = sent(1)
    delivery = d.statuses("not a status", d.status(message.wamid, "read"))
    event = _process(post_delivery, delivery)
    assert event.error == "1 skipped: statuses: 1 items not objects"
    assert Message.objects.get(pk=message.pk).status == "read"


def test_an_item_the_database_refuses_costs_that_item_only(post_delivery, sent, phone, monkeypatch):
    from webhooks import processor

    (message,) = sent(1)
    real = processor.messages_ingest

    def refuse(*, messages):
        if any(m.wamid == "wamid.HOSTILE" for m in messages):
            raise RuntimeError("refused by the database")
        return real(messages=messages)

    monkeypatch.setattr(processor, "messages_ingest", refuse)
    delivery = _with_good_status(_incoming(), message)
    assert post_delivery(delivery).status_code == 200
    deliveries_process()
    event = WebhookEvent.objects.get()
    assert Message.objects.get(pk=message.pk).status == "delivered"
    assert (event.processed_at, event.attempts) == (None, 1)
    assert event.error == "1 failed: messages[0]: RuntimeError: refused by the database"
    monkeypatch.setattr(processor, "messages_ingest", real)
    deliveries_process()
    event.refresh_from_db()
    assert event.processed_at is not None and event.error == ""
    assert InboxMessage.objects.get().wamid == "wamid.HOSTILE"


def test_an_account_restricted_with_a_string_ban_info_is_still_restricted(post_delivery, phone):
    _process(post_delivery, _account_update("DISABLED_UPDATE", ban_info="DISABLE"))
    account = WhatsAppAccount.objects.get(pk=phone.account_id)
    assert account.health == "restricted" and "DISABLE" in account.health_detail


def test_the_admin_lists_deliveries_with_errors(client, staff_user, post_delivery, sent):
    _process(post_delivery, d.statuses("not a status"))
    client.force_login(staff_user)
    response = client.get("/admin/webhooks/webhookevent/", {"error__isempty": "0"})
    assert response.status_code == 200
    assert "1 skipped" in response.content.decode()

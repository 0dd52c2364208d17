import json
from pathlib import Path

import pytest

from titanflow.simulator.testing import SimulatorControlError, start_simulator
from titanflow.simulator.tests.conftest import APP_SECRET
from titanflow.simulator.tests.helpers import PHONE, WABA, error_code, send, template_send

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
PYWA_WEBHOOKS = SHARED / "fixtures" / "meta-webhooks-pywa"


@pytest.fixture
def meta(receiver):
    with start_simulator(webhook_url=receiver.url, app_secret=APP_SECRET) as handle:
        yield handle


def _change(body: dict) -> dict:
    [entry] = body["entry"]
    [change] = entry["changes"]
    return change


def _meta_example(file: str, case: str) -> dict:
    """Meta's real delivery of this kind (pywa's fixtures), when the shared folder is present."""
    if not PYWA_WEBHOOKS.is_dir():
        pytest.skip("../shared is not present on this machine")
    return _change(json.loads((PYWA_WEBHOOKS / file).read_text())[case])


def test_a_template_event_changes_the_template_and_posts_a_signed_update(meta, receiver):
    answer = meta.template_event(
        event="PAUSED", waba_id=WABA, template_name="spring_sale", language="en_US", reason="LOW"
    )

    [body] = receiver.wait_for(1)
    assert answer["webhook_statuses"] == [200]
    assert receiver.all_signed()
    assert body["entry"][0]["id"] == WABA and isinstance(body["entry"][0]["time"], int)
    change = _change(body)
    assert change["field"] == "message_template_status_update"
    value = change["value"]
    assert value["event"] == "PAUSED"
    assert value["message_template_id"] == 300000000000003
    assert value["message_template_name"] == "spring_sale"
    assert value["message_template_language"] == "en_US"
    assert value["reason"] == "LOW"
    assert error_code(send(meta.url, template_send("9715", "spring_sale", []))) == 132015


def test_template_event_shape_matches_metas(meta, receiver):
    example = _meta_example("template_status_update.json", "approved")

    meta.template_event(event="APPROVED", template_id="300000000000001")

    change = _change(receiver.wait_for(1)[0])
    assert change["field"] == example["field"]
    assert set(example["value"]) <= set(change["value"])


def test_reinstating_a_paused_template_makes_it_sendable_again(meta):
    meta.template_event(event="PAUSED", waba_id=WABA, template_name="coupon_code")
    paused = send(meta.url, template_send("9715", "coupon_code", []))
    meta.template_event(event="REINSTATED", waba_id=WABA, template_name="coupon_code")
    reinstated = send(meta.url, template_send("9715", "coupon_code", []))

    assert error_code(paused) == 132015
    assert error_code(reinstated) == 132000  # known and approved again: now it wants parameters


def test_a_template_event_for_a_name_covers_every_language(meta, receiver):
    answer = meta.template_event(event="DISABLED", waba_id=WABA, template_name="order_update")

    assert len(answer["webhook_statuses"]) == 2
    languages = {_change(b)["value"]["message_template_language"] for b in receiver.wait_for(2)}
    assert languages == {"en_US", "ar"}


def test_an_unknown_template_or_event_is_refused(meta):
    with pytest.raises(SimulatorControlError, match="404"):
        meta.template_event(event="PAUSED", waba_id=WABA, template_name="nope")
    with pytest.raises(SimulatorControlError, match="event must be one of"):
        meta.template_event(event="SNOOZED", template_id="300000000000001")


def test_a_throughput_upgrade_raises_the_phones_rate_and_is_announced(meta, receiver):
    meta.phone_event(phone_number_id=PHONE, event="THROUGHPUT_UPGRADE")

    change = _change(receiver.wait_for(1)[0])
    assert change["field"] == "phone_number_quality_update"
    assert change["value"]["event"] == "THROUGHPUT_UPGRADE"
    assert change["value"]["display_phone_number"] == "971501000001"
    phone = next(p for p in meta.world()["phones"] if p["phone_number_id"] == PHONE)
    assert (phone["throughput_level"], phone["max_mps"]) == ("HIGH", 1000)


def test_an_account_restriction_is_announced_with_its_details(meta, receiver):
    meta.account_event(waba_id=WABA, event="ACCOUNT_RESTRICTION")
    meta.account_event(
        waba_id=WABA, event="DISABLED_UPDATE", ban_info={"waba_ban_state": "DISABLE"}
    )

    restriction, ban = (_change(b) for b in receiver.wait_for(2))
    assert restriction["field"] == "account_update"
    assert restriction["value"]["event"] == "ACCOUNT_RESTRICTION"
    [info] = restriction["value"]["restriction_info"]
    assert info["restriction_type"] == "RESTRICTED_BIZ_INITIATED_MESSAGING"
    assert ban["value"] == {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}}


def test_account_update_shape_matches_metas(meta, receiver):
    example = _meta_example("account_update.json", "account_restriction")

    meta.account_event(waba_id=WABA, event="ACCOUNT_RESTRICTION")

    change = _change(receiver.wait_for(1)[0])
    assert set(example["value"]) == set(change["value"])
    assert set(example["value"]["restriction_info"][0]) == set(
        change["value"]["restriction_info"][0]
    )


def test_an_inbound_reply_is_posted_like_metas_incoming_message(meta, receiver):
    answer = meta.inbound(
        phone_number_id=PHONE, from_="+971 50 000 0001", text="STOP", name="Ana", context_id="w.1"
    )

    [body] = receiver.wait_for(1)
    assert receiver.all_signed()
    change = _change(body)
    assert change["field"] == "messages"
    value = change["value"]
    assert value["metadata"]["phone_number_id"] == PHONE
    assert value["contacts"] == [{"profile": {"name": "Ana"}, "wa_id": "971500000001"}]
    [message] = value["messages"]
    assert message["id"] == answer["wamid"]
    assert message["from"] == "971500000001"
    assert message["type"] == "text" and message["text"] == {"body": "STOP"}
    assert message["context"] == {"from": "971501000001", "id": "w.1"}


def test_inbound_shape_matches_metas(meta, receiver):
    example = _meta_example("message.json", "reply")

    meta.inbound(phone_number_id=PHONE, from_="971500000001", text="hi", context_id="w.1")

    value = _change(receiver.wait_for(1)[0])["value"]
    [message], [expected] = value["messages"], example["value"]["messages"]
    assert set(example["value"]) - {"contacts"} <= set(value)
    assert set(message) == set(expected)
    assert set(message["context"]) == set(expected["context"])


def test_a_quick_reply_tap_arrives_as_a_button_message(meta, receiver):
    meta.inbound(phone_number_id=PHONE, from_="971500000001", text="Stop promotions", type="button")

    [message] = _change(receiver.wait_for(1)[0])["value"]["messages"]
    assert message["type"] == "button"
    assert message["button"] == {"payload": "Stop promotions", "text": "Stop promotions"}


def test_a_marketing_stop_arrives_as_user_preferences(meta, receiver):
    meta.user_preferences(phone_number_id=PHONE, wa_id="971500000001", value="stop")

    change = _change(receiver.wait_for(1)[0])
    assert change["field"] == "user_preferences"
    [preference] = change["value"]["user_preferences"]
    assert preference["wa_id"] == "971500000001"
    assert (preference["category"], preference["value"]) == ("marketing_messages", "stop")


def test_events_without_webhooks_still_change_the_world(simulator):
    answer = simulator.template_event(event="PAUSED", template_id="300000000000001")

    assert answer["webhook_statuses"] == [None]
    statuses = {t["id"]: t["status"] for t in simulator.world()["templates"]}
    assert statuses["300000000000001"] == "PAUSED"

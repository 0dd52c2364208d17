from collections import defaultdict

import pytest

from titanflow.simulator.options import SimulatorOptions
from titanflow.simulator.testing import start_simulator
from titanflow.simulator.tests.conftest import APP_SECRET
from titanflow.simulator.tests.helpers import PHONE, WABA, order_update, send, text_send

STAGES = ["sent", "delivered", "read"]


def _simulator(receiver, **opts):
    opts.setdefault("stage_delay_ms", (0, 5))
    return start_simulator(webhook_url=receiver.url, app_secret=APP_SECRET, **opts)


def _order_of_arrival(receiver) -> dict[str, list[str]]:
    stages = defaultdict(list)
    for status in receiver.statuses():
        stages[status["id"]].append(status["status"])
    return stages


def test_each_accepted_send_yields_signed_sent_delivered_read_webhooks(receiver):
    with _simulator(receiver) as meta:
        body = {**order_update("971500000001"), "biz_opaque_callback_data": "m:12345"}
        wamid = send(meta.url, body).json()["messages"][0]["id"]
        stats = meta.wait_for_webhooks()

    bodies = receiver.wait_for(3)
    assert receiver.all_signed()
    assert all(b["object"] == "whatsapp_business_account" for b in bodies)
    [entry] = bodies[0]["entry"]
    assert entry["id"] == WABA
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "971501000001", "phone_number_id": PHONE}
    statuses = receiver.statuses()
    assert sorted(s["status"] for s in statuses) == sorted(STAGES)
    for status in statuses:
        assert status["id"] == wamid
        assert status["recipient_id"] == "971500000001"
        assert status["biz_opaque_callback_data"] == "m:12345"
        assert status["timestamp"].isdigit()
        assert status["pricing"] == {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        }
        assert status["conversation"]["origin"] == {"type": "utility"}
    assert stats["webhooks"]["posted"] == 3
    assert stats["webhooks"]["statuses_posted"] == 3
    assert stats["webhooks"]["latency_ms"]["p99"] is not None


def test_a_wrong_secret_would_not_verify(receiver):
    with _simulator(receiver) as meta:
        send(meta.url, order_update("971500000001"))
        meta.wait_for_webhooks()

    assert receiver.all_signed(APP_SECRET)
    assert not receiver.all_signed("another-secret")


def test_callback_data_is_absent_when_the_send_had_none(receiver):
    with _simulator(receiver, statuses=["sent"]) as meta:
        send(meta.url, order_update("971500000001"))
        meta.wait_for_webhooks()

    [status] = receiver.statuses()
    assert "biz_opaque_callback_data" not in status


def test_inbox_text_replies_get_free_service_statuses(receiver):
    with _simulator(receiver, statuses=["sent"]) as meta:
        send(meta.url, text_send("971500000001"))
        meta.wait_for_webhooks()

    [status] = receiver.statuses()
    assert status["pricing"]["billable"] is False
    assert status["pricing"]["category"] == "service"


def test_the_status_list_is_configurable(receiver):
    with _simulator(receiver, statuses=["sent", "delivered"]) as meta:
        send(meta.url, order_update("971500000001"))
        meta.wait_for_webhooks()

    assert sorted(s["status"] for s in receiver.statuses()) == ["delivered", "sent"]


def test_statuses_are_batched_per_delivery(receiver):
    with _simulator(
        receiver,
        statuses=["sent"],
        statuses_per_delivery=3,
        stage_delay_ms=(100, 100),
        batch_linger_ms=500,
    ) as meta:
        for i in range(6):
            send(meta.url, order_update(f"97150000000{i}"))
        meta.wait_for_webhooks()

    sizes = [
        sum(len(c["value"]["statuses"]) for e in body["entry"] for c in e["changes"])
        for body in receiver.bodies()
    ]
    assert sum(sizes) == 6
    assert max(sizes) == 3
    assert len(sizes) < 6


def test_a_batch_groups_statuses_by_waba_and_phone(receiver):
    with _simulator(
        receiver,
        statuses=["sent"],
        statuses_per_delivery=3,
        stage_delay_ms=(100, 100),
        batch_linger_ms=500,
    ) as meta:
        send(meta.url, order_update("971500000001"), phone="200000000000001")
        send(meta.url, order_update("971500000002"), phone="200000000000002")
        send(meta.url, order_update("971500000003"), phone="200000000000001")
        meta.wait_for_webhooks()

    [body] = receiver.bodies()
    [entry] = body["entry"]
    per_phone = {
        c["value"]["metadata"]["phone_number_id"]: len(c["value"]["statuses"])
        for c in entry["changes"]
    }
    assert per_phone == {"200000000000001": 2, "200000000000002": 1}


def test_duplicates_repost_the_same_delivery(receiver):
    with _simulator(receiver, duplicate_rate=1.0) as meta:
        send(meta.url, order_update("971500000001"))
        stats = meta.wait_for_webhooks()

    raws = [raw for _, raw in receiver.deliveries]
    assert len(raws) == 6
    assert len(set(raws)) == 3
    assert receiver.all_signed()
    assert stats["webhooks"]["duplicates"] == 3


def test_without_shuffle_each_message_moves_forward_in_order(receiver):
    with _simulator(receiver, webhook_concurrency=1, seed=7) as meta:
        for i in range(10):
            send(meta.url, order_update(f"97150000{i:04d}"))
        meta.wait_for_webhooks()

    assert all(stages == STAGES for stages in _order_of_arrival(receiver).values())


def test_shuffle_delivers_some_messages_out_of_order(receiver):
    with _simulator(receiver, webhook_concurrency=1, shuffle=True, seed=7) as meta:
        for i in range(10):
            send(meta.url, order_update(f"97150000{i:04d}"))
        meta.wait_for_webhooks()

    arrivals = _order_of_arrival(receiver)
    assert len(arrivals) == 10
    assert all(sorted(stages) == sorted(STAGES) for stages in arrivals.values())
    assert any(stages != STAGES for stages in arrivals.values())


def test_a_refused_delivery_is_retried_and_counted(receiver):
    receiver.failures_left = 1
    with _simulator(receiver, statuses=["sent"]) as meta:
        send(meta.url, order_update("971500000001"))
        stats = meta.wait_for_webhooks()

    assert len(receiver.statuses()) == 1
    assert stats["webhooks"]["failed_by_status"] == {"500": 1}
    assert stats["webhooks"]["posted"] == 1 and stats["webhooks"]["dropped"] == 0


def test_no_webhooks_without_a_url(simulator):
    send(simulator.url, order_update("971500000001"))

    assert simulator.stats()["webhooks"]["enabled"] is False
    assert simulator.stats()["webhooks"]["pending"] == 0


def test_a_webhook_url_without_a_secret_is_refused():
    with pytest.raises(ValueError, match="app_secret"):
        SimulatorOptions(webhook_url="http://127.0.0.1:1/")

from datetime import UTC, datetime, timedelta

import pytest
import requests

from titanflow.simulator.scenario import ScenarioError, parse_scenario
from titanflow.simulator.testing import SimulatorControlError, start_simulator
from titanflow.simulator.tests.conftest import APP_SECRET
from titanflow.simulator.tests.helpers import (
    OTHER_PHONE,
    PHONE,
    order_update,
    send,
    template_send,
    text_parameters,
    text_send,
)


def _codes(url: str, count: int, *, to: str = "971500000001", phone: str = PHONE) -> list:
    answers = [send(url, order_update(to), phone=phone) for _ in range(count)]
    return [r.json()["error"]["code"] if r.status_code >= 400 else 200 for r in answers]


def test_an_error_after_n_sends(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131042, "after": 2}]})

    assert _codes(simulator.url, 4) == [200, 200, 131042, 131042]
    assert simulator.stats()["rejected_by_code"] == {"131042": 2}


def test_a_count_limited_error_heals(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131000, "count": 2}]})

    answers = [send(simulator.url, order_update("971500000001")) for _ in range(3)]

    assert [r.status_code for r in answers] == [500, 500, 200]  # 131000 is Meta's 500
    assert simulator.stats()["accepted_total"] == 1


def test_after_and_count_together_fail_a_window_of_sends(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131048, "after": 1, "count": 2}]})

    assert _codes(simulator.url, 5) == [200, 131048, 131048, 200, 200]


def test_a_recipient_rule_touches_only_that_recipient(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131049, "recipient": "+971 50 000 0042"}]})

    assert _codes(simulator.url, 2, to="971500000042") == [131049, 131049]
    assert _codes(simulator.url, 2, to="971500000043") == [200, 200]


def test_a_template_rule_touches_only_that_template(simulator):
    simulator.set_scenario({"rules": [{"error_code": 132015, "template": "order_update"}]})

    assert _codes(simulator.url, 1) == [132015]
    assert send(simulator.url, text_send("971500000001")).status_code == 200
    coupon = template_send(
        "971500000001",
        "coupon_code",
        [
            {"type": "body", "parameters": text_parameters("Ana", "15%")},
            {
                "type": "button",
                "sub_type": "copy_code",
                "index": 0,
                "parameters": [{"type": "coupon_code", "coupon_code": "SAVE15"}],
            },
        ],
    )
    assert send(simulator.url, coupon).status_code == 200


def test_a_phone_rule_touches_only_that_phone(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131045, "phone_number_id": OTHER_PHONE}]})

    assert _codes(simulator.url, 1, phone=OTHER_PHONE) == [131045]
    assert _codes(simulator.url, 1, phone=PHONE) == [200]


def test_the_http_status_of_an_error_can_be_chosen(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131016, "http_status": 502}]})

    response = send(simulator.url, order_update("971500000001"))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == 131016


def test_rules_are_tried_in_order_and_the_first_that_fires_wins(simulator):
    simulator.set_scenario(
        {"rules": [{"error_code": 131026, "count": 1}, {"error_code": 131042, "count": 1}]}
    )

    assert _codes(simulator.url, 3) == [131026, 131042, 200]


def test_time_windows(simulator):
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).isoformat()
    simulator.set_scenario(
        {
            "rules": [
                {"error_code": 131026, "from": later},
                {"error_code": 131042, "until": earlier},
                {"error_code": 131031, "from": earlier, "until": later},
            ]
        }
    )

    assert _codes(simulator.url, 1) == [131031]


def test_at_second_counts_from_when_the_scenario_was_loaded(clock):
    with start_simulator(clock=clock) as meta:
        meta.set_scenario({"rules": [{"error_code": 131000, "at_second": 30}]})
        clock.advance(29)
        before = _codes(meta.url, 1)
        clock.advance(2)
        after = _codes(meta.url, 1)

    assert (before, after) == ([200], [131000])


def test_rules_can_be_cleared_and_reset_clears_them_too(simulator):
    simulator.set_scenario({"rules": [{"error_code": 131042}]})
    simulator.set_scenario({"rules": []})
    assert _codes(simulator.url, 1) == [200]

    simulator.set_scenario({"rules": [{"error_code": 131042}]})
    simulator.reset()
    assert _codes(simulator.url, 1) == [200]
    assert simulator.stats()["accepted_total"] == 1


def test_a_scenario_given_at_start_applies_from_the_first_send():
    with start_simulator(scenario={"rules": [{"error_code": 368}]}) as meta:
        assert _codes(meta.url, 1) == [368]


def test_a_webhook_delivered_error_is_accepted_then_reported_as_failed(receiver):
    scenario = {"rules": [{"error_code": 131049, "delivery": "webhook"}]}
    with start_simulator(
        scenario=scenario, webhook_url=receiver.url, app_secret=APP_SECRET, stage_delay_ms=(0, 0)
    ) as meta:
        body = {**order_update("971500000007"), "biz_opaque_callback_data": "m:77"}
        response = send(meta.url, body)
        meta.wait_for_webhooks()
        stats = meta.stats()

    assert response.status_code == 200
    wamid = response.json()["messages"][0]["id"]
    [status] = receiver.statuses()
    assert status["id"] == wamid and status["status"] == "failed"
    assert status["biz_opaque_callback_data"] == "m:77"
    [error] = status["errors"]
    assert error["code"] == 131049
    assert set(error) == {"code", "title", "message", "error_data"}
    assert error["error_data"]["details"]
    assert stats["accepted_total"] == 1 and stats["rejected_by_code"] == {}


def test_a_timeout_rule_accepts_and_records_but_never_answers(receiver):
    scenario = {"rules": [{"timeout": True, "recipient": "971500000099"}]}
    with start_simulator(
        scenario=scenario,
        webhook_url=receiver.url,
        app_secret=APP_SECRET,
        timeout_hold_s=5,
        stage_delay_ms=(0, 0),
    ) as meta:
        with pytest.raises(requests.exceptions.ReadTimeout):
            send(meta.url, order_update("971500000099"), timeout=0.5)
        answered = send(meta.url, order_update("971500000100"))
        meta.wait_for_webhooks()
        stats = meta.stats()

    assert answered.status_code == 200
    assert stats["accepted_by_recipient"] == {"971500000099": 1, "971500000100": 1}
    held = [s for s in receiver.statuses() if s["recipient_id"] == "971500000099"]
    assert {s["status"] for s in held} == {"sent", "delivered", "read"}  # reconcilable by webhook


@pytest.mark.parametrize(
    ("scenario", "names"),
    [
        ('{"rules": [', ["not valid JSON"]),
        ({"rules": [{"error_code": 1}, {"error_code": 2, "colour": "red"}]}, ["rule 1", "colour"]),
        ({"rules": [{"error_code": "131042"}]}, ["rule 0", "error_code"]),
        ({"rules": [{"error_code": 1}, {"error_code": 1, "after": True}]}, ["rule 1", "after"]),
        ({"rules": [{"error_code": 1, "delivery": "pigeon"}]}, ["rule 0", "delivery"]),
        ({"rules": [{"recipient": "9715"}]}, ["rule 0", "error_code"]),
        ({"rules": [{"error_code": 1, "from": "next tuesday"}]}, ["rule 0", "from"]),
        ({"rules": [{"error_code": 1, "count": 0}]}, ["rule 0", "count"]),
        ({"rules": [{"error_code": 1, "timeout": True}]}, ["rule 0", "timeout"]),
        ({"rules": {"error_code": 1}}, ["rules"]),
        ({"rules": [], "extra": 1}, ["extra"]),
    ],
)
def test_a_scenario_that_does_not_parse_names_the_rule_and_field(scenario, names):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario)

    assert all(name in str(caught.value) for name in names)


def test_the_control_api_refuses_a_bad_scenario_with_its_reason(simulator):
    response = requests.post(
        f"{simulator.url}/_sim/scenario", json={"rules": [{"error_code": 1, "wat": 2}]}, timeout=5
    )

    assert response.status_code == 400
    assert "rule 0" in response.json()["error"] and "wat" in response.json()["error"]
    with pytest.raises(ScenarioError):
        simulator.set_scenario({"rules": [{"delivery": "later"}]})


def test_a_bad_world_change_is_refused_without_breaking_the_simulator(simulator):
    with pytest.raises(SimulatorControlError, match="phones\\[0\\].waba_id"):
        simulator.set_world({"phones": [{"phone_number_id": "9", "waba_id": "nope"}]})

    assert _codes(simulator.url, 1) == [200]

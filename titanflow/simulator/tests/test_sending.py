import json

import pytest
import requests

from titanflow.simulator.testing import start_simulator
from titanflow.simulator.tests.helpers import (
    OTHER_PHONE,
    PHONE,
    error_code,
    order_update,
    send,
    template_send,
    text_parameters,
    text_send,
)

META_ERROR_KEYS = {"message", "type", "code", "error_data", "fbtrace_id"}


def test_template_send_answers_metas_success_body_and_counts_the_recipient(simulator):
    body = order_update("+971 50 123 4567")

    response = send(simulator.url, body)

    assert response.status_code == 200
    answer = response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "+971 50 123 4567", "wa_id": "971501234567"}]
    [message] = answer["messages"]
    assert message["id"].startswith("wamid.") and message["message_status"] == "accepted"
    stats = simulator.stats()
    assert stats["accepted_total"] == 1
    assert stats["accepted_by_recipient"] == {"971501234567": 1}
    assert stats["accepted_by_phone"] == {PHONE: 1}
    assert stats["accepted_by_template"] == {"order_update": 1}
    assert simulator.messages("971501234567") == [body]


def test_every_accepted_send_gets_its_own_wamid(simulator):
    wamids = {send(simulator.url, order_update("971500000001")).json()["messages"][0]["id"]}
    wamids |= {send(simulator.url, order_update("971500000001")).json()["messages"][0]["id"]}
    wamids |= {send(simulator.url, order_update("971500000002")).json()["messages"][0]["id"]}

    assert len(wamids) == 3
    assert simulator.stats()["accepted_by_recipient"] == {"971500000001": 2, "971500000002": 1}


def test_wamids_differ_between_two_simulator_runs():
    with start_simulator() as first, start_simulator() as second:
        one = send(first.url, order_update("971500000001")).json()["messages"][0]["id"]
        two = send(second.url, order_update("971500000001")).json()["messages"][0]["id"]

    assert one != two


def test_recorded_bodies_are_the_exact_json_received_in_order(simulator):
    raw = b'{"messaging_product":"whatsapp","to":"971500000009","type":"text","text":{"body":"x"}}'
    send(simulator.url, text_send("971500000009", "first"))
    send(simulator.url, raw)

    recorded = simulator.messages("+971 50 000 0009")

    assert recorded == [text_send("971500000009", "first"), json.loads(raw)]


def test_text_messages_are_accepted_and_counted_apart(simulator):
    response = send(simulator.url, text_send("971500000003"))

    assert response.status_code == 200
    stats = simulator.stats()
    assert stats["text_messages"] == 1
    assert stats["accepted_total"] == 1
    assert stats["accepted_by_template"] == {}


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_a_bad_or_missing_token_is_refused_with_190(simulator, token):
    response = send(simulator.url, order_update("971500000001"), token=token)

    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == META_ERROR_KEYS
    assert error["code"] == 190 and error["type"] == "OAuthException"
    assert simulator.stats()["rejected_by_code"] == {"190": 1}
    assert simulator.stats()["accepted_total"] == 0


def test_the_token_of_another_account_cannot_send_from_this_phone():
    world = {
        "accounts": [
            {"waba_id": "1", "name": "A", "access_token": "token-a"},
            {"waba_id": "2", "name": "B", "access_token": "token-b"},
        ],
        "phones": [{"phone_number_id": "11", "waba_id": "1", "display_phone_number": "+1 555"}],
    }
    with start_simulator(world=world) as meta:
        refused = send(meta.url, text_send("15550001"), phone="11", token="token-b")
        accepted = send(meta.url, text_send("15550001"), phone="11", token="token-a")

    assert (refused.status_code, error_code(refused)) == (401, 190)
    assert accepted.status_code == 200


def test_an_unknown_phone_number_id_is_graphs_unknown_object_error(simulator):
    response = send(simulator.url, order_update("971500000001"), phone="999")

    assert response.status_code == 400
    assert error_code(response) == 100
    assert response.json()["error"]["error_subcode"] == 33


def test_a_waba_id_has_no_messages_edge(simulator):
    response = send(simulator.url, order_update("971500000001"), phone="100000000000001")

    assert (response.status_code, error_code(response)) == (400, 100)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        {"to": "971500000001", "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "to": "971500000001", "type": "image"},
        {"messaging_product": "whatsapp", "to": "971500000001", "type": "text"},
        {"messaging_product": "whatsapp", "to": "971500000001", "type": "template"},
    ],
    ids=["not-json", "no-product", "no-to", "image", "text-no-body", "template-no-name"],
)
def test_malformed_requests_are_refused_with_100(simulator, body):
    response = send(simulator.url, body)

    assert (response.status_code, error_code(response)) == (400, 100)
    assert set(response.json()["error"]) == META_ERROR_KEYS


@pytest.mark.parametrize(
    ("name", "language", "code"),
    [
        ("no_such_template", "en_US", 132001),
        ("order_update", "fr", 132001),
        ("mystery_box", "en_US", 132001),  # REJECTED
        ("winter_clearance", "en_US", 132015),  # PAUSED
    ],
)
def test_template_errors_follow_the_templates_state(simulator, name, language, code):
    body = template_send("971500000001", name, [], language=language)

    response = send(simulator.url, body)

    assert (response.status_code, error_code(response)) == (400, code)
    assert simulator.stats()["rejected_by_code"] == {str(code): 1}


def test_a_disabled_template_is_refused_with_132016(simulator):
    simulator.template_event(
        event="DISABLED", waba_id="100000000000001", template_name="coupon_code"
    )
    body = template_send("971500000001", "coupon_code", [])

    assert error_code(send(simulator.url, body)) == 132016


@pytest.mark.parametrize(
    "body_values",
    [("Ana", "A-1"), ("Ana", "A-1", "12 March", "extra")],
    ids=["one-missing", "one-extra"],
)
def test_a_parameter_count_other_than_the_templates_is_132000(simulator, body_values):
    response = send(simulator.url, order_update("971500000001", body_values=body_values))

    assert (response.status_code, error_code(response)) == (400, 132000)


def test_a_url_button_variable_is_required(simulator):
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/y.png"}}]},
        {"type": "body", "parameters": text_parameters("Ana", "25%")},
    ]
    without_button = template_send("971500000001", "spring_sale", components)
    button = {"type": "button", "sub_type": "url", "index": "0", "parameters": text_parameters("S")}
    with_button = template_send("971500000001", "spring_sale", [*components, button])

    assert error_code(send(simulator.url, without_button)) == 132000
    assert send(simulator.url, with_button).status_code == 200


def test_a_media_header_of_the_wrong_kind_is_132012(simulator):
    components = [
        {"type": "header", "parameters": [{"type": "video", "video": {"link": "https://x/y"}}]},
        {"type": "body", "parameters": text_parameters("Ana", "INV-1", "AED 1")},
    ]

    response = send(simulator.url, template_send("971500000001", "invoice_ready", components))

    assert error_code(response) == 132012


def test_named_templates_need_every_parameter_name(simulator):
    def welcome(*names):
        parameters = [{"type": "text", "parameter_name": n, "text": "v"} for n in names]
        return template_send(
            "971500000001", "welcome_member", [{"type": "body", "parameters": parameters}]
        )

    assert send(simulator.url, welcome("first_name", "member_number")).status_code == 200
    assert error_code(send(simulator.url, welcome("first_name", "member_no"))) == 132000


def test_ten_body_variables_are_all_required(simulator):
    ten = [{"type": "body", "parameters": text_parameters(*map(str, range(1, 11)))}]
    nine = [{"type": "body", "parameters": text_parameters(*map(str, range(1, 10)))}]

    assert send(simulator.url, template_send("9715", "loyalty_statement", ten)).status_code == 200
    assert (
        error_code(send(simulator.url, template_send("9715", "loyalty_statement", nine))) == 132000
    )


def test_sends_beyond_max_mps_within_one_second_get_exactly_the_excess_130429s(clock):
    with start_simulator(clock=clock) as meta:
        meta.set_phone(PHONE, max_mps=5)
        answers = [send(meta.url, order_update(f"97150000{i:04d}")) for i in range(8)]
        other_phone = [
            send(meta.url, order_update(f"97150000{i:04d}"), phone=OTHER_PHONE) for i in range(8)
        ]
        stats = meta.stats()

    throttled = [r for r in answers if r.status_code == 400]
    assert len(throttled) == 3
    assert {error_code(r) for r in throttled} == {130429}
    assert throttled[0].json()["error"]["message"] == "(#130429) Rate limit hit"
    assert all(r.status_code == 200 for r in other_phone)
    assert stats["accepted_by_phone"] == {PHONE: 5, OTHER_PHONE: 8}
    assert stats["rejected_by_code"] == {"130429": 3}


def test_the_throughput_window_slides_with_time(clock):
    with start_simulator(clock=clock) as meta:
        meta.set_phone(PHONE, max_mps=2)
        first = [send(meta.url, order_update("971500000001")).status_code for _ in range(3)]
        clock.advance(0.5)
        half_second_later = send(meta.url, order_update("971500000001")).status_code
        clock.advance(0.6)
        after_the_window = [
            send(meta.url, order_update("971500000001")).status_code for _ in (1, 2)
        ]

    assert first == [200, 200, 400]
    assert half_second_later == 400
    assert after_the_window == [200, 200]


def test_default_mps_is_80_per_phone(clock):
    with start_simulator(clock=clock) as meta:
        codes = [send(meta.url, text_send(f"9715{i:05d}")).status_code for i in range(82)]

    assert codes.count(200) == 80 and codes.count(400) == 2


def test_latency_holds_every_answer():
    with start_simulator(latency_ms=3000) as meta:
        with pytest.raises(requests.exceptions.ReadTimeout):
            send(meta.url, order_update("971500000001"), timeout=0.5)
        stats = meta.stats()

    assert stats["accepted_total"] == 1  # accepted at once; only the answer waits

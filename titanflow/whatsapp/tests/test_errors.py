import json
import pickle

import pytest

from titanflow.whatsapp.errors import (
    AmbiguousSendError,
    MetaAPIError,
    Scope,
    TransportError,
    classify,
)

# Written from META_API.md's table, independently of CATALOGUE.
EXPECTED_SCOPES = {
    4: "throttle",
    80007: "throttle",
    100: "payload",
    131008: "payload",
    131009: "payload",
    132012: "payload",
    132008: "payload",
    190: "account",
    368: "account",
    130429: "throttle",
    130472: "recipient",
    131000: "transient",
    131016: "transient",
    131005: "account",
    131026: "recipient",
    131031: "account",
    131042: "account",
    131045: "phone",
    131047: "recipient",
    131048: "phone",
    131049: "recipient",
    131050: "recipient",
    131051: "recipient",
    131052: "payload",
    131053: "payload",
    131056: "recipient",
    131057: "transient",
    131064: "account",
    132000: "template",
    132001: "template",
    132005: "template",
    132007: "template",
    132015: "template",
    132016: "template",
    132068: "template",
    132069: "template",
    133010: "phone",
}


@pytest.mark.parametrize(("code", "scope"), sorted(EXPECTED_SCOPES.items()))
def test_every_documented_code_has_its_scope(code, scope):
    info = classify(code, http_status=400)
    assert info.code == code
    assert info.scope == scope
    assert info.meaning and info.action


@pytest.mark.parametrize("code", sorted(EXPECTED_SCOPES))
def test_scope_does_not_depend_on_http_status(code):
    # Webhook `errors[]` carry a code but no HTTP status; the decision must be the same.
    assert classify(code).scope == classify(code, http_status=400).scope
    assert classify(code, http_status=500).scope == EXPECTED_SCOPES[code]


def test_paused_and_disabled_templates_are_marked():
    assert classify(132015).marks_template == "PAUSED"
    assert classify(132016).marks_template == "DISABLED"
    assert classify(132001).marks_template is None


def test_only_131050_records_an_opt_out():
    assert classify(131050).records_opt_out
    assert not any(classify(code).records_opt_out for code in EXPECTED_SCOPES if code != 131050)


def test_pair_rate_and_maintenance_carry_their_waits():
    assert classify(131056).retry_after_s == 4.0
    assert "4^n" in classify(131056).action
    assert 30 <= classify(131057).retry_after_s <= 120


def test_unknown_code_with_server_error_is_transient():
    assert classify(999999, http_status=503).scope == Scope.TRANSIENT


def test_no_answer_at_all_is_transient():
    assert classify(None).scope == Scope.TRANSIENT
    assert classify(None, http_status=502).scope == Scope.TRANSIENT


def test_unknown_code_with_client_error_is_retried_as_transient_and_names_the_code():
    info = classify(987654, http_status=400)
    assert info.scope == Scope.TRANSIENT
    assert "987654" in info.meaning


def test_unknown_code_from_a_webhook_is_retried_as_transient():
    assert classify(987654).scope == Scope.TRANSIENT


def test_133004_temporarily_unavailable_is_transient():
    assert classify(133004, http_status=503).scope == Scope.TRANSIENT


def test_http_429_without_code_is_throttle():
    assert classify(None, http_status=429).scope == Scope.THROTTLE


def test_redirect_is_not_mistaken_for_a_meta_answer():
    assert classify(None, http_status=302).scope == Scope.UNKNOWN


def meta_error_body(**error) -> bytes:
    return json.dumps({"error": error}).encode()


def test_error_body_is_parsed_into_its_parts():
    body = meta_error_body(
        message="(#131026) Message Undeliverable.",
        type="OAuthException",
        code=131026,
        error_subcode=2494010,
        error_data={"messaging_product": "whatsapp", "details": "Recipient not on WhatsApp"},
        fbtrace_id="AbC123",
    )
    error = MetaAPIError.from_response(400, body, {})
    assert (error.code, error.subcode, error.http_status) == (131026, 2494010, 400)
    assert error.title == "(#131026) Message Undeliverable."
    assert error.details == "Recipient not on WhatsApp"
    assert error.fbtrace_id == "AbC123"
    assert error.info.scope == Scope.RECIPIENT
    assert "Recipient not on WhatsApp" in str(error)


@pytest.mark.parametrize(
    "body", [b"<html>Bad Gateway</html>", b"", b"[1, 2]", b'{"error": "nope"}', b"\xff\xfe"]
)
def test_non_json_or_odd_bodies_still_give_an_error(body):
    error = MetaAPIError.from_response(502, body, {})
    assert error.code is None
    assert error.http_status == 502
    assert error.info.scope == Scope.TRANSIENT
    assert "502" in error.title


def test_usage_header_gives_retry_after_in_seconds():
    usage = {
        "102": [
            {"type": "whatsapp_business_management", "estimated_time_to_regain_access": 0},
            {"type": "whatsapp_business_messaging", "estimated_time_to_regain_access": 7},
        ]
    }
    headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
    error = MetaAPIError.from_response(400, meta_error_body(message="limit", code=80007), headers)
    assert error.retry_after == 7 * 60
    assert error.info.scope == Scope.THROTTLE


def test_retry_after_header_is_used_without_usage_header():
    error = MetaAPIError.from_response(429, b"", {"Retry-After": "12"})
    assert error.retry_after == 12.0


def test_unreadable_usage_header_is_ignored():
    headers = {"x-business-use-case-usage": "{not json", "retry-after": "soon"}
    assert MetaAPIError.from_response(400, b"", headers).retry_after is None


def test_transport_and_ambiguous_errors_have_their_own_scopes():
    assert TransportError("connection refused").info.scope == Scope.TRANSIENT
    assert AmbiguousSendError("read timed out").info.scope == Scope.AMBIGUOUS
    assert isinstance(AmbiguousSendError("x"), MetaAPIError)


def test_errors_survive_pickling_between_worker_processes():
    error = MetaAPIError("paused", code=132015, details="d", http_status=400, retry_after=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.details, copy.http_status, copy.retry_after) == (132015, "d", 400, 3.0)
    assert type(pickle.loads(pickle.dumps(AmbiguousSendError("t")))) is AmbiguousSendError

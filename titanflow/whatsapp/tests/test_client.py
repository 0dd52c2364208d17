import json
import socket

import pytest
from django.test import override_settings

from titanflow.whatsapp.client import GraphClient, SendResult, graph_client, shared_pool
from titanflow.whatsapp.errors import AmbiguousSendError, MetaAPIError, Scope, TransportError

from .conftest import Reply

PHONE_ID = "106540352242922"
BODY = '{"messaging_product":"whatsapp","to":"971501234567","text":"Olá"}'.encode()
ACCEPTED = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+971501234567", "wa_id": "971501234567"}],
    "messages": [{"id": "wamid.HBgLOTcxNTAxMjM0NTY3", "message_status": "accepted"}],
}


@pytest.fixture
def client(graph_stub):
    client = GraphClient(base_url=graph_stub.url, version="v23.0", access_token="tok-1")
    yield client
    client.pool.clear()


@pytest.fixture
def impatient_client(graph_stub):
    client = GraphClient(
        base_url=graph_stub.url, version="v23.0", access_token="tok-1", read_timeout=0.2
    )
    yield client
    client.pool.clear()


def meta_error(code, message, details="", **extra):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ax1"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": {**error, **extra}}


def test_send_returns_the_wamid_and_sends_the_exact_bytes(graph_stub, client):
    graph_stub.on("POST", f"/v23.0/{PHONE_ID}/messages", Reply(200, ACCEPTED))

    result = client.send_message(PHONE_ID, BODY)

    assert result == SendResult(
        wamid="wamid.HBgLOTcxNTAxMjM0NTY3",
        message_status="accepted",
        wa_id="971501234567",
        http_status=200,
    )
    [request] = graph_stub.seen
    assert request.body == BODY
    assert request.headers["authorization"] == "Bearer tok-1"
    assert request.headers["content-type"] == "application/json"


def test_send_reports_a_message_held_for_quality(graph_stub, client):
    held = {
        **ACCEPTED,
        "messages": [{"id": "wamid.X", "message_status": "held_for_quality_assessment"}],
    }
    graph_stub.on("POST", f"/v23.0/{PHONE_ID}/messages", Reply(200, held))

    assert client.send_message(PHONE_ID, BODY).message_status == "held_for_quality_assessment"


def test_error_body_becomes_a_meta_error_with_code_title_and_details(graph_stub, client):
    body = meta_error(
        132001,
        "(#132001) Template name does not exist in the translation",
        "template name (spring_sale) does not exist in en_US",
    )
    graph_stub.on("POST", f"/v23.0/{PHONE_ID}/messages", Reply(404, body))

    with pytest.raises(MetaAPIError) as caught:
        client.send_message(PHONE_ID, BODY)

    error = caught.value
    assert type(error) is MetaAPIError
    assert error.code == 132001
    assert error.title == "(#132001) Template name does not exist in the translation"
    assert error.details == "template name (spring_sale) does not exist in en_US"
    assert error.http_status == 404
    assert error.fbtrace_id == "Ax1"
    assert error.info.scope == Scope.TEMPLATE


def test_expired_token_is_an_account_problem(graph_stub, client):
    body = meta_error(190, "Error validating access token: Session has expired", error_subcode=463)
    graph_stub.on("GET", "/v23.0/555/phone_numbers", Reply(401, body))

    with pytest.raises(MetaAPIError) as caught:
        client.get("555/phone_numbers")

    assert (caught.value.code, caught.value.subcode) == (190, 463)
    assert caught.value.info.scope == Scope.ACCOUNT


def test_usage_header_tells_how_long_to_wait(graph_stub, client):
    usage = {
        "555": [
            {
                "type": "whatsapp_business_management",
                "call_count": 100,
                "estimated_time_to_regain_access": 3,
            }
        ]
    }
    graph_stub.on(
        "GET",
        "/v23.0/555/message_templates",
        Reply(
            400,
            meta_error(80007, "Rate limit hit"),
            {"X-Business-Use-Case-Usage": json.dumps(usage)},
        ),
    )

    with pytest.raises(MetaAPIError) as caught:
        client.get("555/message_templates")

    assert caught.value.retry_after == 180.0
    assert caught.value.info.scope == Scope.THROTTLE


def test_get_passes_params_and_returns_the_object(graph_stub, client):
    graph_stub.on(
        "GET", f"/v23.0/{PHONE_ID}", Reply(200, {"id": PHONE_ID, "quality_rating": "GREEN"})
    )

    answer = client.get(PHONE_ID, {"fields": "quality_rating,throughput"})

    assert answer["quality_rating"] == "GREEN"
    assert graph_stub.seen[0].query == {"fields": ["quality_rating,throughput"]}


def test_paging_follows_next_and_cursors_across_three_pages(graph_stub, client):
    path = "/v23.0/555/message_templates"

    def pages(seen):
        after = seen.query.get("after", [""])[0]
        assert seen.query["limit"] == ["2"]
        if after == "":
            return Reply(
                200,
                {
                    "data": [{"id": "1"}, {"id": "2"}],
                    "paging": {
                        "cursors": {"before": "b1", "after": "c1"},
                        "next": f"{graph_stub.url}{path}?limit=2&after=c1",
                    },
                },
            )
        if after == "c1":  # no `next`: the cursor alone must lead on
            return Reply(
                200,
                {
                    "data": [{"id": "3"}, {"id": "4"}],
                    "paging": {"cursors": {"before": "b2", "after": "c2"}},
                },
            )
        if after == "c2":  # the last page: Meta still repeats a cursor but gives no `next`
            return Reply(200, {"data": [{"id": "5"}], "paging": {"cursors": {"after": "c3"}}})
        return Reply(200, {"data": [], "paging": {"cursors": {}}})

    graph_stub.on("GET", path, pages)

    items = list(client.iter_pages("555/message_templates", {"limit": 2}))

    assert [item["id"] for item in items] == ["1", "2", "3", "4", "5"]
    assert all(seen.headers["authorization"] == "Bearer tok-1" for seen in graph_stub.seen)


def test_paging_never_follows_a_next_link_to_another_host(graph_stub, client):
    path = "/v23.0/555/phone_numbers"

    def pages(seen):
        if "after" not in seen.query:
            return Reply(
                200,
                {
                    "data": [{"id": "p1"}],
                    "paging": {
                        "cursors": {"after": "c1"},
                        "next": "http://attacker.invalid/steal?after=c1",
                    },
                },
            )
        return Reply(200, {"data": [{"id": "p2"}]})

    graph_stub.on("GET", path, pages)

    assert [item["id"] for item in client.iter_pages("555/phone_numbers")] == ["p1", "p2"]
    assert [seen.path for seen in graph_stub.seen] == [path, path]


def test_connection_refused_is_a_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = GraphClient(base_url=f"http://127.0.0.1:{port}", version="v23.0", access_token="t")

    with pytest.raises(TransportError) as caught:
        client.send_message(PHONE_ID, BODY)

    assert caught.value.info.scope == Scope.TRANSIENT


def test_read_timeout_after_sending_is_ambiguous(graph_stub, impatient_client):
    graph_stub.on("POST", f"/v23.0/{PHONE_ID}/messages", Reply(hang=True))

    with pytest.raises(AmbiguousSendError) as caught:
        impatient_client.send_message(PHONE_ID, BODY)

    assert caught.value.info.scope == Scope.AMBIGUOUS
    assert graph_stub.seen[0].body == BODY


def test_read_timeout_on_a_read_is_safe_to_retry(graph_stub, impatient_client):
    graph_stub.on("GET", "/v23.0/555/phone_numbers", Reply(hang=True))

    with pytest.raises(TransportError):
        impatient_client.get("555/phone_numbers")


def test_accepted_answer_without_a_message_id_is_ambiguous(graph_stub, client):
    graph_stub.on("POST", f"/v23.0/{PHONE_ID}/messages", Reply(200, b"<html>ok</html>"))

    with pytest.raises(AmbiguousSendError):
        client.send_message(PHONE_ID, BODY)


def test_redirect_is_not_followed(graph_stub, client):
    graph_stub.on(
        "POST",
        f"/v23.0/{PHONE_ID}/messages",
        Reply(307, b"", {"Location": f"{graph_stub.url}/elsewhere"}),
    )
    graph_stub.on("POST", "/elsewhere", Reply(200, ACCEPTED))

    with pytest.raises(MetaAPIError) as caught:
        client.send_message(PHONE_ID, BODY)

    assert caught.value.http_status == 307
    assert caught.value.info.scope == Scope.UNKNOWN
    assert [seen.path for seen in graph_stub.seen] == [f"/v23.0/{PHONE_ID}/messages"]


def test_server_error_without_json_is_transient(graph_stub, client):
    graph_stub.on("POST", f"/v23.0/{PHONE_ID}/messages", Reply(503, b"upstream unavailable"))

    with pytest.raises(MetaAPIError) as caught:
        client.send_message(PHONE_ID, BODY)

    assert caught.value.info.scope == Scope.TRANSIENT


def test_factory_uses_settings_and_shares_one_pool(graph_stub):
    with override_settings(WHATSAPP_GRAPH_URL=graph_stub.url, WHATSAPP_API_VERSION="v99.0"):
        first, second = graph_client("token-a"), graph_client("token-b")
    graph_stub.on(
        "GET", "/v99.0/me", lambda seen: Reply(200, {"auth": seen.headers["authorization"]})
    )

    assert first.pool is second.pool is shared_pool()
    assert first.get("me") == {"auth": "Bearer token-a"}
    assert second.get("me") == {"auth": "Bearer token-b"}
    shared_pool().clear()

import io

import pytest
from django.db import DatabaseError

from tests.factories import AccountFactory
from titanflow.wsgi import application
from webhooks.models import WebhookEvent
from webhooks.tests.conftest import SECRET, URL
from webhooks.tests.deliveries import WABA_ID, encode, signed_headers, status, statuses

pytestmark = pytest.mark.django_db
BODY = encode(statuses(status("wamid.W1", "delivered")))


def _call(method="POST", path=URL, body=BODY, headers=None, length=None, stream=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": stream or io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body) if length is None else length),
        **(headers or {}),
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    answer["body"] = b"".join(application(environ, start_response))
    return answer


def test_a_signed_delivery_is_stored_and_answered_ok():
    answer = _call(headers=signed_headers(BODY, SECRET))
    assert (answer["status"], answer["body"]) == (200, b"ok")
    assert bytes(WebhookEvent.objects.get().body) == BODY


def test_a_forged_delivery_is_refused_and_not_stored():
    assert _call(headers=signed_headers(BODY, "forged"))["status"] == 403
    assert _call()["status"] == 401
    assert not WebhookEvent.objects.exists()


def test_another_accounts_secret_is_refused_on_the_fast_path_too():
    AccountFactory(waba_id="190000000000666", app_secret="marketer-chosen")
    AccountFactory(waba_id=WABA_ID)
    answer = _call(headers=signed_headers(BODY, "marketer-chosen"))
    assert answer["status"] == 403 and b"another account" in answer["body"]
    assert not WebhookEvent.objects.exists()


def test_an_oversized_delivery_is_refused_unread():
    stream = io.BytesIO(b"{}")
    answer = _call(body=b"{}", length=3 * 1024 * 1024 + 1, stream=stream)
    assert answer["status"] == 413
    assert stream.tell() == 0
    assert not WebhookEvent.objects.exists()


def test_the_challenge_and_other_paths_still_go_through_django(settings):
    settings.META_VERIFY_TOKEN = "t"
    challenge = "hub.mode=subscribe&hub.verify_token=t&hub.challenge=99"
    answer = _call(method="GET", body=b"", headers={"QUERY_STRING": challenge})
    assert (answer["status"], answer["body"]) == (200, b"99")
    assert _call(method="GET", path="/healthz", body=b"")["status"] == 200


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_is_retried_once(monkeypatch):
    real = WebhookEvent.store
    calls = []

    def flaky(body, **kwargs):
        calls.append(body)
        if len(calls) == 1:
            raise DatabaseError("server closed the connection unexpectedly")
        real(body, **kwargs)

    monkeypatch.setattr(WebhookEvent, "store", staticmethod(flaky))
    answer = _call(headers=signed_headers(BODY, SECRET))
    assert answer["status"] == 200 and len(calls) == 2
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_storage_down_answers_an_error_so_meta_delivers_again(monkeypatch):
    def down(body, **kwargs):
        raise DatabaseError("could not connect")

    monkeypatch.setattr(WebhookEvent, "store", staticmethod(down))
    assert _call(headers=signed_headers(BODY, SECRET))["status"] == 503

"""Celery tasks: throttling backs off for as long as Meta asks, transient errors retry."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from templates_app import tasks
from templates_app.services.progress import SyncProgress
from tests.factories import AccountFactory

USAGE = {"100": [{"type": "whatsapp", "call_count": 100, "estimated_time_to_regain_access": 5}]}


class _Throttled(BaseHTTPRequestHandler):
    """Meta refusing management calls with 80007, asking for 5 more minutes."""

    def do_GET(self):
        body = json.dumps(
            {"error": {"message": "Rate limit", "type": "OAuthException", "code": 80007}}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Business-Use-Case-Usage", json.dumps(USAGE))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def throttled_meta(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttled)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WHATSAPP_GRAPH_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield
    server.shutdown()
    server.server_close()
    thread.join()


class _RetryRequested(Exception):
    pass


@pytest.fixture
def retries(monkeypatch):
    """The retries a task asks Celery for, instead of Celery scheduling them."""
    asked = []

    def retry(*, exc, countdown):
        asked.append((exc, countdown))
        return _RetryRequested()

    monkeypatch.setattr(tasks.sync_account, "retry", retry)
    return asked


def test_a_throttled_sync_retries_when_meta_says_access_returns(throttled_meta, retries, db):
    account = AccountFactory()
    progress = SyncProgress.start(account_id=account.pk)

    with pytest.raises(_RetryRequested):
        tasks.sync_account.run(account_id=account.pk, sync_id=progress.sync_id)

    exc, countdown = retries[0]
    assert exc.code == 80007
    assert countdown == 301  # 5 minutes from the usage header, plus a second
    assert progress.read()["state"] == "waiting"
    cache.clear()


def test_an_unreachable_meta_retries_with_backoff(settings, retries, db):
    settings.WHATSAPP_GRAPH_URL = "http://127.0.0.1:9"
    account = AccountFactory()

    with pytest.raises(_RetryRequested):
        tasks.sync_account.run(account_id=account.pk)

    _, countdown = retries[0]
    assert 2 <= countdown <= 4  # the transport error's 2 s base, with jitter


def test_a_deleted_account_is_not_an_error(db):
    assert tasks.sync_account.run(account_id=987654) == {"error": "account deleted"}


@pytest.mark.django_db(transaction=True)
def test_the_periodic_sync_reschedules_throttled_accounts(throttled_meta, monkeypatch):
    scheduled = []
    monkeypatch.setattr(
        tasks.sync_account, "apply_async", lambda **kwargs: scheduled.append(kwargs)
    )
    accounts = AccountFactory.create_batch(2)

    tasks.sync_all_accounts.run()

    assert sorted(s["kwargs"]["account_id"] for s in scheduled) == [a.pk for a in accounts]
    assert {s["countdown"] for s in scheduled} == {301}

import pytest

from tests.factories import AccountFactory, PhoneFactory
from webhooks import kick
from webhooks.secrets import clear_secret_cache
from webhooks.tasks import process_pending
from webhooks.tests import deliveries as d
from webhooks.tests.deliveries import encode, signed_headers

SECRET = "test-app-secret"
URL = "/webhooks/whatsapp/"


@pytest.fixture(autouse=True)
def _fresh_secrets(settings):
    settings.META_APP_SECRET = SECRET
    clear_secret_cache()
    yield
    clear_secret_cache()


@pytest.fixture
def post_delivery(client):
    """Posts a delivery (dict or raw bytes) signed with the app secret, or `secret`."""

    def post(delivery, *, secret: str | None = SECRET, headers: dict | None = None):
        body = delivery if isinstance(delivery, bytes) else encode(delivery)
        signed = signed_headers(body, secret) if secret else {}
        return client.post(
            URL, data=body, content_type="application/json", **signed, **(headers or {})
        )

    return post


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """The processor wake-ups the door sent; no task reaches a real queue from these tests."""
    calls = []
    monkeypatch.setattr(process_pending, "apply_async", lambda **kw: calls.append(kw))
    kick._client(kick.settings.REDIS_URL).delete(kick.KICK_KEY)
    kick.kick_window_reset()
    return calls


@pytest.fixture
def phone():
    """The number the recorded deliveries in deliveries.py are addressed to."""
    account = AccountFactory(waba_id=d.WABA_ID)
    return PhoneFactory(
        account=account, phone_number_id=d.PHONE_NUMBER_ID, display_phone_number="+1 555 000 0001"
    )

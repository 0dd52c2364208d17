import socket

import pytest

from templates_app.models import WhatsAppAccount
from tests.factories import AccountFactory
from webhooks.models import WebhookEvent
from webhooks.tests.conftest import URL
from webhooks.tests.deliveries import WABA_ID, encode, signed_headers, status, statuses

pytestmark = pytest.mark.django_db

DELIVERY = statuses(status("wamid.A1", "delivered"))


def test_challenge_answers_the_right_token(client, settings):
    settings.META_VERIFY_TOKEN = "verify-me"
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    response = client.get(URL, query)
    assert response.status_code == 200
    assert response.content == b"42"


@pytest.mark.parametrize("token", ["wrong", ""])
def test_challenge_refuses_a_wrong_or_missing_token(client, settings, token):
    settings.META_VERIFY_TOKEN = "verify-me"
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"}
    assert client.get(URL, query).status_code == 403


def test_challenge_refused_when_no_token_is_configured(client, settings):
    settings.META_VERIFY_TOKEN = ""
    query = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"}
    assert client.get(URL, query).status_code == 403


def test_signed_delivery_is_stored_byte_for_byte_and_wakes_the_processor(post_delivery, enqueued):
    response = post_delivery(DELIVERY)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert bytes(event.body) == encode(DELIVERY)
    assert event.processed_at is None
    assert len(enqueued) == 1


def test_a_burst_wakes_the_processor_once(post_delivery, enqueued):
    for _ in range(5):
        assert post_delivery(DELIVERY).status_code == 200
    assert WebhookEvent.objects.count() == 5
    assert len(enqueued) == 1


def test_wrong_signature_is_refused_and_nothing_stored(post_delivery):
    response = post_delivery(DELIVERY, secret="not-the-secret")
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()


def test_missing_signature_is_refused_and_nothing_stored(post_delivery):
    response = post_delivery(DELIVERY, secret=None)
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_signature_of_another_body_is_refused(client):
    from webhooks.tests.conftest import SECRET

    headers = signed_headers(encode(DELIVERY), SECRET)
    tampered = encode(statuses(status("wamid.A1", "read")))
    response = client.post(URL, data=tampered, content_type="application/json", **headers)
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()


def test_without_any_secret_every_delivery_is_refused(post_delivery, settings):
    settings.META_APP_SECRET = ""
    response = post_delivery(DELIVERY, secret="")
    assert response.status_code == 401
    response = post_delivery(DELIVERY, secret="anything")
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()


def test_an_accounts_own_app_secret_signs_its_deliveries(post_delivery, settings):
    settings.META_APP_SECRET = ""
    AccountFactory(waba_id=WABA_ID, app_secret="account-secret")
    assert post_delivery(DELIVERY, secret="account-secret").status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_a_new_account_secret_is_honoured_at_once(post_delivery, settings):
    settings.META_APP_SECRET = ""
    account = AccountFactory(waba_id=WABA_ID)
    assert post_delivery(DELIVERY, secret="late-secret").status_code == 403
    account.app_secret = "late-secret"
    account.save(update_fields=["app_secret"])
    assert post_delivery(DELIVERY, secret="late-secret").status_code == 200


def test_the_common_delivery_costs_one_insert(post_delivery, enqueued, django_assert_num_queries):
    post_delivery(DELIVERY)  # fills the secrets cache
    with django_assert_num_queries(1):
        assert post_delivery(DELIVERY).status_code == 200


def test_body_over_3_mb_is_refused(post_delivery):
    body = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = post_delivery(body)
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("body", [b"object=whatsapp", b"[1, 2]", b"", b"  not json"])
def test_non_json_body_is_refused(post_delivery, body):
    response = post_delivery(body)
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_other_methods_are_not_allowed(client):
    assert client.put(URL, data=b"{}").status_code == 405


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_still_answers_200_and_loses_nothing(post_delivery, settings, enqueued):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/5"
    # Built once: each carries the current second, which may tick between posting and checking.
    deliveries = [encode(statuses(status(f"wamid.R{n}", "delivered"))) for n in range(3)]
    for body in deliveries:
        assert post_delivery(body).status_code == 200
    assert [bytes(e.body) for e in WebhookEvent.objects.order_by("id")] == deliveries
    assert enqueued == []


def test_account_secret_cache_reads_no_account_twice(django_assert_num_queries):
    from webhooks.secrets import account_secrets

    AccountFactory(waba_id="1", app_secret="own")
    AccountFactory(waba_id="2", app_secret="own")
    expected = {"own": frozenset({"1", "2"})}
    assert account_secrets().waba_ids_by_secret == expected
    with django_assert_num_queries(0):
        assert account_secrets().waba_ids_by_secret == expected
    assert WhatsAppAccount.objects.count() == 2


def test_staff_see_the_waiting_statuses_in_the_admin(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/admin/webhooks/pendingstatus/").status_code == 200
    assert client.get("/admin/webhooks/webhookevent/").status_code == 200

"""The assets API: token auth, write-only secrets, filters, sync trigger."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from templates_app.models import WhatsAppAccount
from templates_app.tests.conftest import TOKEN, WABA
from tests.factories import AccountFactory, PhoneFactory, TemplateFactory
from titanflow.models import AuditEntry


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")
    return client


@pytest.fixture
def admin_api(site_admin):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=site_admin).key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_creating_an_account_checks_the_token_and_never_echoes_it(
    meta, admin_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin_api.post(
            "/api/accounts/",
            {"waba_id": WABA, "access_token": TOKEN, "app_secret": "hush"},
            format="json",
        )

    assert response.status_code == 201, response.content
    assert TOKEN not in response.content.decode()
    assert "hush" not in response.content.decode()
    assert response.json()["name"] == "Sync Shop"
    assert WhatsAppAccount.objects.get(waba_id=WABA).access_token == TOKEN
    assert len(queued) == 1
    entry = AuditEntry.objects.get(action="account.create")
    assert (entry.username, entry.via) == ("ada", "api")
    assert entry.changes["access_token"] == entry.changes["app_secret"] == "changed"
    assert "hush" not in str(entry.changes) and TOKEN not in str(entry.changes)


def test_a_refused_token_is_a_400_with_the_reason(meta, admin_api):
    response = admin_api.post(
        "/api/accounts/", {"waba_id": WABA, "access_token": "bad-token"}, format="json"
    )

    assert response.status_code == 400
    assert "invalid or expired" in response.json()["access_token"][0]
    assert "bad-token" not in response.content.decode()
    assert not WhatsAppAccount.objects.exists()


def test_listing_accounts_never_shows_secrets(api):
    AccountFactory(access_token="tok-listed", app_secret="secret-listed")

    response = api.get("/api/accounts/")

    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert "tok-listed" not in response.content.decode()
    assert "secret-listed" not in response.content.decode()


def test_sync_answers_202_with_a_sync_id_and_reports_progress(
    api, django_capture_on_commit_callbacks
):
    account = AccountFactory()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = api.post(f"/api/accounts/{account.pk}/sync/")

    assert response.status_code == 202
    sync_id = response.json()["sync_id"]
    assert len(queued) == 1
    status = api.get(f"/api/accounts/{account.pk}/sync-status/").json()
    assert (status["sync_id"], status["state"]) == (sync_id, "queued")


def test_phone_numbers_filter_by_account_and_quality(api):
    ours = AccountFactory()
    PhoneFactory(account=ours, quality_rating="RED", phone_number_id="111")
    PhoneFactory(account=ours, quality_rating="GREEN")
    PhoneFactory(quality_rating="RED")

    response = api.get(f"/api/phone-numbers/?account__waba_id={ours.waba_id}&quality_rating=RED")

    assert [row["phone_number_id"] for row in response.json()["results"]] == ["111"]


def test_templates_filter_by_status_language_and_sendable(api):
    TemplateFactory(name="ok_ar", language="ar")
    TemplateFactory(name="paused_ar", language="ar", status="PAUSED")
    TemplateFactory(name="ok_en", language="en_US")

    sendable = api.get("/api/templates/?language=ar&sendable=true").json()["results"]
    paused = api.get("/api/templates/?status=PAUSED").json()["results"]

    assert [row["name"] for row in sendable] == ["ok_ar"]
    assert [(row["name"], row["sendable"]) for row in paused] == [("paused_ar", False)]
    assert paused[0]["unavailable_reason"] == "Meta reports it paused."


def test_the_api_wants_a_token(client, db):
    assert APIClient().get("/api/templates/").status_code == 401


@pytest.mark.parametrize("waba_id", ["../_sim/world", "123/phone_numbers", "12 34", "1" * 33])
def test_a_waba_id_that_is_not_digits_is_a_400_and_meta_is_never_called(
    admin_api, monkeypatch, waba_id
):
    from templates_app.services import sync

    calls = []
    monkeypatch.setattr(sync, "account_verify_token", lambda **kw: calls.append(kw))

    response = admin_api.post(
        "/api/accounts/", {"waba_id": waba_id, "access_token": TOKEN}, format="json"
    )

    assert response.status_code == 400
    assert "up to 32 digits" in response.json()["waba_id"][0]
    assert calls == []
    assert not WhatsAppAccount.objects.exists()


def test_an_account_added_twice_is_a_400(admin_api):
    AccountFactory(waba_id=WABA)

    response = admin_api.post(
        "/api/accounts/", {"waba_id": WABA, "access_token": TOKEN}, format="json"
    )

    assert response.status_code == 400
    assert "already added" in response.json()["waba_id"][0]

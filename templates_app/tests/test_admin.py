"""Staff add accounts in the admin with the same token check, and can sync from the list."""

import pytest
from django.core.cache import cache

from templates_app.models import WhatsAppAccount
from templates_app.tests.conftest import TOKEN, WABA
from tests.factories import AccountFactory

ADD = "/admin/templates_app/whatsappaccount/add/"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    cache.clear()
    yield client
    cache.clear()


def test_a_refused_token_is_explained_in_the_admin(meta, staff_client):
    response = staff_client.post(ADD, {"waba_id": WABA, "name": "X", "access_token": "nope"})

    assert response.status_code == 200
    assert "the access token is invalid or expired" in response.content.decode()
    assert not WhatsAppAccount.objects.exists()


def test_a_checked_token_saves_the_account(meta, staff_client):
    response = staff_client.post(ADD, {"waba_id": WABA, "name": "Shop", "access_token": TOKEN})

    assert response.status_code == 302
    assert WhatsAppAccount.objects.get(waba_id=WABA).access_token == TOKEN


def test_editing_without_a_new_token_keeps_it_and_asks_meta_nothing(staff_client, settings):
    settings.WHATSAPP_GRAPH_URL = "http://127.0.0.1:9"  # any call to Meta would fail
    account = AccountFactory(access_token="kept")

    response = staff_client.post(
        f"/admin/templates_app/whatsappaccount/{account.pk}/change/",
        {"waba_id": account.waba_id, "name": "Renamed", "access_token": "", "app_secret": ""},
    )

    account.refresh_from_db()
    assert response.status_code == 302
    assert (account.name, account.access_token) == ("Renamed", "kept")


def test_the_sync_now_action_queues_each_selected_account(
    staff_client, django_capture_on_commit_callbacks
):
    accounts = AccountFactory.create_batch(2)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        staff_client.post(
            "/admin/templates_app/whatsappaccount/",
            {"action": "sync_now", "_selected_action": [a.pk for a in accounts]},
        )

    assert len(queued) == 2

"""The assets pages as a marketer sees them."""

import re

import pytest
from django.core.cache import cache

from templates_app.models import PhoneNumber, WhatsAppAccount
from templates_app.services.progress import SyncProgress
from templates_app.services.sync import account_sync
from templates_app.tests.conftest import TOKEN, WABA
from tests.factories import AccountFactory, PhoneFactory, TemplateFactory
from titanflow.models import AuditEntry

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # sync progress lives in this test run's own Redis db
    yield
    cache.clear()


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# -- accounts ----------------------------------------------------------------------------------


def test_account_list_shows_health_and_never_the_token(marketer_client, django_assert_num_queries):
    AccountFactory(name="Good", access_token="tok-secret-1")
    AccountFactory(
        name="Broken",
        access_token="tok-secret-2",
        health=WhatsAppAccount.Health.TOKEN_INVALID,
        health_detail="Meta says the access token is invalid or expired.",
    )

    with django_assert_num_queries(4):  # session, user, marketer group, accounts with counts
        response = marketer_client.get("/assets/accounts/")

    page = _text(response)
    assert response.status_code == 200
    assert "Access token invalid" in page
    assert "Meta says the access token is invalid or expired." in page
    assert "tok-secret" not in page


def test_adding_an_account_checks_the_token_with_meta(
    meta, site_admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = site_admin_client.post(
            "/assets/accounts/new/", {"waba_id": WABA, "access_token": TOKEN}
        )

    account = WhatsAppAccount.objects.get(waba_id=WABA)
    assert response.status_code == 302
    assert (account.name, account.access_token) == ("Sync Shop", TOKEN)
    assert len(queued) == 1  # the first sync, sent once the account is stored
    entry = AuditEntry.objects.get(action="account.create")
    assert (entry.username, entry.via, entry.object_id) == ("ada", "page", str(account.pk))
    assert entry.changes["access_token"] == "changed"
    assert "app_secret" not in entry.changes  # none was given, so none changed
    assert TOKEN not in str(entry.changes)


def test_a_refused_token_is_explained_and_nothing_is_stored(meta, site_admin_client):
    response = site_admin_client.post(
        "/assets/accounts/new/", {"waba_id": WABA, "access_token": "wrong-token"}, **HTMX
    )

    page = _text(response)
    assert response.status_code == 200
    assert "the access token is invalid or expired" in page
    assert "wrong-token" not in page
    assert not WhatsAppAccount.objects.exists()


@pytest.mark.parametrize("token", ["tök€n", "tok en", "tok\r\nX-Evil: 1"])
def test_a_token_no_http_header_can_carry_is_refused_before_meta(meta, site_admin_client, token):
    response = site_admin_client.post(
        "/assets/accounts/new/", {"waba_id": WABA, "access_token": token}, **HTMX
    )

    assert response.status_code == 200
    assert "paste it as Meta shows it" in _text(response)
    assert not WhatsAppAccount.objects.exists()


def test_the_add_form_renders_on_its_own_page(site_admin_client, django_assert_num_queries):
    with django_assert_num_queries(3):
        response = site_admin_client.get("/assets/accounts/new/")

    assert response.status_code == 200
    assert 'type="password"' in response.content.decode()


def test_an_invalid_token_from_a_sync_shows_on_the_accounts_page(meta, marketer_client):
    account = AccountFactory(waba_id=WABA, access_token="revoked")
    account_sync(account=account)

    page = _text(marketer_client.get("/assets/accounts/"))

    assert "Access token invalid" in page
    assert "Paste a new token" in page


# -- sync now ----------------------------------------------------------------------------------


def test_sync_now_queues_one_sync_and_answers_a_polling_fragment(
    marketer_client, django_capture_on_commit_callbacks
):
    account = AccountFactory()

    with django_capture_on_commit_callbacks() as queued:
        first = marketer_client.post(f"/assets/accounts/{account.pk}/sync/", **HTMX)
        marketer_client.post(f"/assets/accounts/{account.pk}/sync/", **HTMX)

    assert len(queued) == 1  # a second click joins the sync in flight
    assert 'hx-trigger="every 1s"' in first.content.decode()
    assert "Waiting for a worker" in first.content.decode()


def test_sync_now_without_htmx_redirects_back(marketer_client):
    account = AccountFactory()

    response = marketer_client.post(f"/assets/accounts/{account.pk}/sync/")

    assert response.status_code == 302
    assert response["Location"] == "/assets/accounts/"


def test_the_progress_fragment_stops_polling_and_shows_the_result_when_done(
    meta, marketer_client, django_assert_num_queries
):
    account = AccountFactory(waba_id=WABA, access_token=TOKEN)
    progress = SyncProgress.start(account_id=account.pk)
    url = f"/assets/sync/status/?account={account.pk}&was=active"
    assert 'hx-trigger="every 1s"' in marketer_client.get(url, **HTMX).content.decode()

    account_sync(account=account, progress=progress)
    with django_assert_num_queries(4):
        response = marketer_client.get(url, **HTMX)

    page = _text(response)
    assert "hx-trigger" not in page
    assert "Synced 2 numbers, 3 templates" in page
    assert "assets-synced" in response["HX-Trigger"]  # the lists on the page reload


def test_sync_all_from_the_templates_page_queues_every_account(
    marketer_client, django_capture_on_commit_callbacks
):
    AccountFactory.create_batch(2)

    with django_capture_on_commit_callbacks() as queued:
        response = marketer_client.post("/assets/sync/", **HTMX)

    assert len(queued) == 2
    assert response.content.decode().count("Waiting for a worker") == 2


# -- phone numbers -----------------------------------------------------------------------------


def test_phone_list_shows_quality_tier_and_rate(marketer_client, django_assert_num_queries):
    PhoneFactory(display_phone_number="+971 50 111 0001", quality_rating="RED", max_mps=80)
    PhoneFactory(throughput_level="HIGH", max_mps=1000, messaging_limit="TIER_100K")

    with django_assert_num_queries(4):  # session, user, group, numbers with their accounts
        response = marketer_client.get("/assets/phones/")

    page = _text(response)
    assert '<span class="badge badge-red">RED</span>' in page
    assert "TIER_100K" in page
    assert "up to 1000/s" in page


def test_lowering_a_numbers_rate_sticks_and_marks_it(site_admin_client):
    phone = PhoneFactory(max_mps=80)

    response = site_admin_client.post(f"/assets/phones/{phone.pk}/rate/", {"max_mps": 20}, **HTMX)

    phone.refresh_from_db()
    assert (phone.max_mps, phone.max_mps_overridden) == (20, True)
    assert "20/s lowered" in _text(response)
    entry = AuditEntry.objects.get(action="phone.rate")
    assert (entry.username, entry.object_id, entry.changes) == (
        "ada",
        str(phone.pk),
        {"max_mps": [80, 20]},
    )


def test_a_rate_above_what_meta_allows_is_refused(site_admin_client):
    phone = PhoneFactory(max_mps=80, throughput_level="STANDARD")

    response = site_admin_client.post(f"/assets/phones/{phone.pk}/rate/", {"max_mps": 500}, **HTMX)

    phone.refresh_from_db()
    assert phone.max_mps == 80
    assert "less than or equal to 80" in _text(response)
    assert not AuditEntry.objects.exists()


def test_restoring_the_full_rate_lets_sync_manage_it_again(site_admin_client):
    phone = PhoneFactory(max_mps=20, max_mps_overridden=True)

    response = site_admin_client.post(f"/assets/phones/{phone.pk}/rate/", {"max_mps": 80})

    assert response.status_code == 302
    assert not PhoneNumber.objects.get(pk=phone.pk).max_mps_overridden


# -- templates ---------------------------------------------------------------------------------


def test_template_list_previews_with_variables_highlighted(
    marketer_client, django_assert_num_queries
):
    TemplateFactory(
        name="spring_sale",
        components=[
            {
                "type": "BODY",
                "text": "Hi {{1}}, enjoy {{2}}",
                "example": {"body_text": [["Ana", "25%"]]},
            }
        ],
        slots=[
            {"key": "body.1", "component": "body", "kind": "text", "name": "1", "example": "Ana"},
            {"key": "body.2", "component": "body", "kind": "text", "name": "2", "example": "25%"},
        ],
    )
    TemplateFactory.create_batch(3)

    # session, user, group, languages, count, page of templates, accounts for the filter and the
    # sync state
    with django_assert_num_queries(8):
        response = marketer_client.get("/assets/templates/")

    page = _text(response)
    assert 'Hi <mark class="var">Ana</mark>, enjoy <mark class="var">25%</mark>' in page
    assert "4 templates" in page


def test_unusable_templates_are_listed_but_marked_not_selectable(marketer_client):
    TemplateFactory(name="gone_one", deleted_at_meta=True)
    TemplateFactory(name="paused_one", status="PAUSED")
    TemplateFactory(name="cards", unsupported_reason="Carousel templates are not supported.")
    TemplateFactory(name="fine_one")

    page = _text(marketer_client.get("/assets/templates/"))

    assert page.count("Not selectable") == 3
    assert "Meta no longer lists this template." in page
    assert "Meta reports it paused." in page
    assert "Carousel templates are not supported." in page


def test_template_filters_narrow_the_list_and_htmx_gets_only_the_results(marketer_client):
    ours = AccountFactory(name="Ours")
    TemplateFactory(account=ours, name="ours_marketing", category="MARKETING", language="ar")
    TemplateFactory(account=ours, name="ours_utility", category="UTILITY", language="ar")
    TemplateFactory(name="theirs", category="MARKETING", language="ar")

    response = marketer_client.get(
        f"/assets/templates/?account={ours.pk}&category=MARKETING&language=ar&status=APPROVED",
        HTTP_HX_TARGET="template-results",
        **HTMX,
    )

    page = _text(response)
    assert "ours_marketing" in page
    assert "ours_utility" not in page and "theirs" not in page
    assert "<html" not in page


def test_templates_are_paginated(marketer_client):
    TemplateFactory.create_batch(30)

    first = _text(marketer_client.get("/assets/templates/"))
    second = _text(marketer_client.get("/assets/templates/?page=2"))

    assert "Page 1 of 2" in first
    assert second.count('class="card template-card') == 5


def test_pages_refuse_anonymous_visitors(client, db):
    for path in ["/assets/accounts/", "/assets/phones/", "/assets/templates/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

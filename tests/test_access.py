"""Every page sits behind the login and every endpoint behind a token; each role reaches what
DESIGN.md gives it and nothing more (walked over every URL pattern); the admin is for staff."""

import re
from types import SimpleNamespace

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from campaigns.models import Campaign
from templates_app.models import PhoneNumber, WhatsAppAccount
from tests.factories import CampaignFactory, ConversationFactory, MessageFactory, PhoneFactory
from titanflow.access import RolePermission, role_of

pytestmark = pytest.mark.django_db

OPEN = ("accounts/login/", "healthz", "webhooks/", "r/")  # r/: tracked links, for anyone
SELF_AUTHENTICATED = ("admin/",)


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str, pk: int = 1) -> str:
    route = re.sub(r"<(?:int|str):pk>", str(pk), route)
    route = re.sub(r"<slug:step>", "upload", route)
    route = re.sub(r"<int:\w+>", str(pk), route)
    route = re.sub(r"<(?:str|slug|uuid|path:)?\w+>", "x", route)
    route = re.sub(r"<path:\w+>", "x", route)
    return "/" + route.lstrip("^").rstrip("$").replace("\\Z", "")


def _routes():
    for route in sorted(set(_walk(get_resolver().url_patterns))):
        path = _concrete(route)
        if any(ch in path for ch in "()[]?*+\\") or path.startswith(("/admin", "/static")):
            continue
        if path.lstrip("/").startswith(OPEN):
            continue
        yield route


# Pages that live under /api/ for integrators to find, yet are pages behind the login.
API_PAGES = ("/api/docs/",)


def _app_routes(kind: str):
    for path in sorted({_concrete(route) for route in _routes()}):
        if (kind == "api") == (path.startswith("/api/") and path not in API_PAGES):
            yield path


@pytest.mark.django_db
@pytest.mark.parametrize("path", list(_app_routes("page")))
def test_every_page_sends_anonymous_users_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302, path
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("path", list(_app_routes("api")))
def test_every_api_endpoint_refuses_anonymous_callers(client, path):
    assert client.get(path).status_code in (401, 403), path


# Pages anyone with a role may post to: their own session and their own API tokens.
OWN_THINGS = ("/accounts/logout/", "/tokens/")
WRITE_METHODS = ("post", "put", "patch", "delete")


@pytest.mark.parametrize("path", list(_app_routes("page")) + list(_app_routes("api")))
def test_users_without_a_role_are_refused_with_a_clear_page(client, django_user_model, path):
    client.force_login(django_user_model.objects.create_user("outsider", password="x-Passw0rd!9"))

    response = client.get(path)

    if path == "/accounts/logout/":
        assert response.status_code == 405  # logging out stays possible, by POST
        return
    assert response.status_code == 403, path
    if not path.startswith("/api/"):
        assert b"no role in TitanFlow" in response.content


@pytest.mark.parametrize("path", list(_app_routes("page")))
def test_admins_reach_every_page(site_admin_client, path):
    assert site_admin_client.get(path).status_code in (200, 302, 404, 405), path


@pytest.mark.parametrize("path", [p for p in _app_routes("page") if not p.startswith(OWN_THINGS)])
def test_viewers_cannot_post_to_any_page(viewer_client, path):
    assert viewer_client.post(path).status_code in (403, 405), path


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize("path", list(_app_routes("api")))
def test_viewers_cannot_write_through_any_api_endpoint(viewer, method, path):
    api = APIClient()
    api.force_authenticate(viewer)
    assert getattr(api, method)(path).status_code == 403, path


# Pages that are forms for changing things: a role that may not change those things is refused.
EDITING_PAGES = {
    "viewer": {
        "/campaigns/new/",
        "/campaigns/1/setup/upload/",
        "/assets/accounts/new/",
        "/audit/",
        "/users/",
    },
    "marketer": {"/assets/accounts/new/", "/audit/", "/users/"},
}


@pytest.mark.parametrize("role", ["viewer", "marketer"])
@pytest.mark.parametrize("path", list(_app_routes("page")))
def test_each_role_reads_every_page_except_the_forms_it_may_not_use(request, role, path):
    client = request.getfixturevalue(f"{role}_client")
    CampaignFactory(pk=1, status=Campaign.Status.DRAFT)  # the marketer's own, so pages exist

    status = client.get(path).status_code

    if path in EDITING_PAGES[role]:
        assert status == 403, path
    else:
        assert status in (200, 302, 404, 405), path


ADMIN_ONLY = [
    ("get", "/assets/accounts/new/"),
    ("post", "/assets/accounts/new/"),
    ("post", "/assets/phones/{phone}/rate/"),
    ("post", "/api/accounts/"),
    ("get", "/audit/"),
    ("get", "/users/"),
    ("post", "/users/{marketer}/role/"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_marketers_cannot_manage_accounts_rates_users_or_read_the_audit_log(
    marketer_client, marketer, method, path
):
    phone = PhoneFactory(max_mps=80)
    body = {"waba_id": "100000000000999", "access_token": "t", "app_secret": "s", "max_mps": 5}

    body["role"] = "admin"
    path = path.format(phone=phone.pk, marketer=marketer.pk)

    response = getattr(marketer_client, method)(path, body)

    assert response.status_code == 403, path
    assert not WhatsAppAccount.objects.filter(waba_id="100000000000999").exists()
    assert PhoneNumber.objects.get(pk=phone.pk).max_mps == 80
    assert role_of(type(marketer).objects.get(pk=marketer.pk)) == "marketer"


def test_an_admin_changes_a_numbers_rate(site_admin_client):
    phone = PhoneFactory(max_mps=80)

    site_admin_client.post(f"/assets/phones/{phone.pk}/rate/", {"max_mps": 5})

    assert PhoneNumber.objects.get(pk=phone.pk).max_mps == 5


def _campaign_routes():
    routes = [r for r in _routes() if re.search(r"campaigns/<(int|str):pk>", r)]
    assert len(routes) > 20  # pages and API: the walk below must not be vacuous
    return routes


@pytest.mark.parametrize("route", _campaign_routes())
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_marketer_cannot_see_or_touch_another_marketers_campaign(
    marketer, other_marketer, method, route
):
    theirs = CampaignFactory(owner=other_marketer, status=Campaign.Status.RUNNING, sent_count=3)
    api = APIClient()
    api.force_login(marketer)  # a session serves both the pages and the API

    response = getattr(api, method)(_concrete(route, theirs.pk))

    # 404 where a marketer may act at all (the campaign does not exist for them); 403 or 405
    # where no one may use that method.
    assert response.status_code in (403, 404, 405), route
    assert Campaign.objects.filter(pk=theirs.pk, status=Campaign.Status.RUNNING).exists()
    assert Campaign.objects.count() == 1  # nothing duplicated or retargeted either


def test_marketers_list_only_their_own_campaigns(marketer_client, other_marketer):
    mine = CampaignFactory(name="Mine")
    CampaignFactory(name="Theirs", owner=other_marketer)

    page = marketer_client.get("/campaigns/").content.decode()
    api = marketer_client.get("/api/campaigns/").json()

    assert "Mine" in page and "Theirs" not in page
    assert [row["id"] for row in api["results"]] == [mine.pk]


def test_admins_and_viewers_see_every_campaign(site_admin_client, viewer, other_marketer):
    theirs = CampaignFactory(owner=other_marketer)

    assert site_admin_client.get(f"/campaigns/{theirs.pk}/").status_code == 200
    site_admin_client.force_login(viewer)
    assert site_admin_client.get(f"/campaigns/{theirs.pk}/").status_code == 200


def test_an_admin_pauses_another_users_campaign(site_admin_client, other_marketer):
    theirs = CampaignFactory(owner=other_marketer, status=Campaign.Status.RUNNING)

    site_admin_client.post(f"/campaigns/{theirs.pk}/pause/")

    assert Campaign.objects.get(pk=theirs.pk).status == Campaign.Status.PAUSED


def test_a_viewer_reads_a_conversation_without_marking_it_read(viewer_client):
    conversation = ConversationFactory(unread_count=2)

    assert viewer_client.get(f"/inbox/{conversation.pk}/").status_code == 200

    conversation.refresh_from_db()
    assert conversation.unread_count == 2


def test_marketers_share_the_inbox(marketer_client):
    conversation = ConversationFactory(unread_count=2)

    assert marketer_client.get(f"/inbox/{conversation.pk}/").status_code == 200

    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_login_page_renders_for_anonymous_users(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in to TitanFlow" in response.content


def test_marketer_cannot_reach_the_admin(marketer_client):
    response = marketer_client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_reach_every_admin_list(client, staff_user):
    client.force_login(staff_user)
    for path in [
        "/admin/",
        "/admin/templates_app/whatsappaccount/",
        "/admin/templates_app/phonenumber/",
        "/admin/templates_app/messagetemplate/",
        "/admin/campaigns/campaign/",
        "/admin/campaigns/campaignsender/",
        "/admin/campaigns/contact/",
        "/admin/campaigns/message/",
        "/admin/campaigns/optout/",
        "/admin/inbox/conversation/",
        "/admin/inbox/inboxmessage/",
        "/admin/webhooks/webhookevent/",
    ]:
        assert client.get(path).status_code == 200, path


def test_logout_needs_a_post_and_ends_the_session(marketer_client):
    assert marketer_client.get("/accounts/logout/").status_code == 405
    marketer_client.post("/accounts/logout/")
    assert marketer_client.get("/").status_code == 302


def test_the_dashboard_counts_only_what_the_user_may_see(client, marketer, other_marketer, viewer):
    MessageFactory.create_batch(2)  # the marketer's campaign
    theirs = CampaignFactory(owner=other_marketer, status=Campaign.Status.RUNNING, name="Theirs")
    MessageFactory.create_batch(3, contact__campaign=theirs)

    client.force_login(marketer)
    mine = client.get("/").content.decode()
    client.force_login(viewer)
    everyone = client.get("/").content.decode()

    assert _stat(mine, "sent") == "2" and "Theirs" not in mine
    assert _stat(everyone, "sent") == "5" and "Theirs" in everyone


def _stat(html: str, name: str) -> str:
    start = html.index(f'data-stat="{name}"')
    value = html.index('class="value">', start) + len('class="value">')
    return html[value : html.index("<", value)]


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_the_campaign_list_costs_the_same_for_every_role(
    request, role, other_marketer, django_assert_num_queries
):
    client = request.getfixturevalue(f"{role}_client")
    CampaignFactory.create_batch(3)
    CampaignFactory.create_batch(3, owner=other_marketer)

    with django_assert_num_queries(5):  # session, user, groups, count, the page with owners
        response = client.get("/campaigns/")

    assert response.content.decode().count("data-campaign=") == (3 if role == "marketer" else 6)


def test_a_refusal_explains_itself(viewer_client):
    response = viewer_client.post("/campaigns/new/", {"name": "Nope"})

    assert response.status_code == 403
    assert "Viewers can look but not change anything." in response.content.decode()
    assert not Campaign.objects.exists()


def test_an_api_write_that_declares_no_action_is_for_admins_only(marketer, site_admin, viewer):
    undeclared_view = SimpleNamespace()
    post = lambda user: SimpleNamespace(method="POST", user=user)  # noqa: E731
    get = SimpleNamespace(method="GET", user=viewer)

    assert not RolePermission().has_permission(post(marketer), undeclared_view)
    assert RolePermission().has_permission(post(site_admin), undeclared_view)
    assert RolePermission().has_permission(get, undeclared_view)


def test_a_superuser_is_an_admin_and_an_inactive_user_has_no_role(staff_user, marketer):
    marketer.is_active = False

    assert (role_of(staff_user), role_of(marketer)) == ("admin", None)


def test_the_role_migration_keeps_the_old_marketer_group_members(django_user_model):
    from importlib import import_module

    from django.apps import apps
    from django.contrib.auth.models import Group

    migration = import_module("titanflow.migrations.0002_role_groups")
    Group.objects.filter(name="marketers").delete()  # as before the migration ran
    old = Group.objects.create(name="marketer")
    old.user_set.add(django_user_model.objects.create_user("early", password="x-Passw0rd!9"))

    migration.create_groups(apps, None)

    assert role_of(django_user_model.objects.get(username="early")) == "marketer"
    assert not Group.objects.filter(name="marketer").exists()
    assert set(Group.objects.values_list("name", flat=True)) >= {"admins", "marketers", "viewers"}

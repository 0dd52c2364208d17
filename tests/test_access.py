"""Every page sits behind the login; the admin is for staff only; the API wants a token."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

OPEN = ("accounts/login/", "healthz", "webhooks/")
SELF_AUTHENTICATED = ("admin/",)


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str) -> str:
    route = re.sub(r"<int:\w+>", "1", route)
    route = re.sub(r"<(?:str|slug|uuid|path:)?\w+>", "x", route)
    route = re.sub(r"<path:\w+>", "x", route)
    return "/" + route.lstrip("^").rstrip("$").replace("\\Z", "")


def _app_routes(kind: str):
    routes = sorted({_concrete(r) for r in _walk(get_resolver().url_patterns)})
    for path in routes:
        if any(ch in path for ch in "()[]?*+\\") or path.startswith(("/admin", "/static")):
            continue
        if path.lstrip("/").startswith(OPEN):
            continue
        if (kind == "api") == path.startswith("/api/"):
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


@pytest.mark.parametrize("path", list(_app_routes("page")))
def test_users_outside_the_marketer_group_are_refused(client, django_user_model, path):
    client.force_login(django_user_model.objects.create_user("outsider", password="x-Passw0rd!9"))
    assert client.get(path).status_code == 403, path


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

"""The API token page: a user creates, replaces and revokes their own token; it is shown once."""

import re

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from titanflow.models import AuditEntry

pytestmark = pytest.mark.django_db


def _key(response) -> str:
    return re.search(r'<code class="token-key">(\w+)</code>', response.content.decode()).group(1)


def _api_status(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/campaigns/").status_code


def test_a_token_made_on_the_page_calls_the_api_until_it_is_revoked(marketer_client):
    created = marketer_client.post("/tokens/new/")
    key = _key(created)

    assert _api_status(key) == 200
    assert key not in marketer_client.get("/tokens/").content.decode()  # shown once only

    marketer_client.post("/tokens/revoke/")

    assert _api_status(key) == 401
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "username"))
    assert actions == [("token.create", "mara"), ("token.revoke", "mara")]
    assert key not in str(list(AuditEntry.objects.values()))


def test_replacing_a_token_retires_the_old_one(marketer_client):
    old = _key(marketer_client.post("/tokens/new/"))
    new = _key(marketer_client.post("/tokens/new/"))

    assert (_api_status(old), _api_status(new)) == (401, 200)
    assert AuditEntry.objects.filter(action="token.rotate").count() == 1


def test_a_users_token_page_touches_only_their_own_token(marketer_client, other_marketer):
    theirs = Token.objects.create(user=other_marketer)

    marketer_client.post("/tokens/revoke/")
    marketer_client.post("/tokens/new/")

    assert Token.objects.filter(key=theirs.key).exists()


def test_a_viewers_token_only_reads(viewer_client):
    key = _key(viewer_client.post("/tokens/new/"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert api.get("/api/campaigns/").status_code == 200
    assert api.post("/api/campaigns/", {"name": "x"}, format="json").status_code == 403


def test_the_token_page_pins_its_queries(marketer_client, marketer, django_assert_num_queries):
    Token.objects.create(user=marketer)

    with django_assert_num_queries(4):  # session, user, groups, token
        response = marketer_client.get("/tokens/")

    assert "You have a token" in response.content.decode()

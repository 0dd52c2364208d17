"""Headers and throttles that hold against a hostile client: a strict Content-Security-Policy
with no inline script on any page, HSTS over HTTPS, login lockout and API rate limits."""

import json
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from campaigns.models import Campaign
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ConversationFactory,
    InboxMessageFactory,
    SenderTemplateFactory,
)

# A script element without src runs inline, unless it is a JSON data block (json_script).
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.I)
HANDLER_ATTRIBUTE = re.compile(r"<[^>]+\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.I)
EVALUATED_TRIGGER = re.compile(r'hx-trigger="[^"]*\[')
PASSWORD = "s3cret-Passw0rd!"


@pytest.fixture
def pages(marketer):
    draft = CampaignFactory(owner=marketer, status=Campaign.Status.READY, columns=["phone"])
    slot = SenderTemplateFactory(sender__campaign=draft, position=0)
    ContactFactory(campaign=draft)
    running = CampaignFactory(owner=marketer, status=Campaign.Status.RUNNING)
    conversation = ConversationFactory(phone=slot.sender.phone)
    InboxMessageFactory(conversation=conversation)
    steps = ["upload", "columns", "senders", "mapping", "review"]
    return [
        "/",
        reverse("campaign-list"),
        reverse("campaign-new"),
        *(reverse("campaign-wizard", kwargs={"pk": draft.pk, "step": s}) for s in steps),
        reverse("campaign-detail", kwargs={"pk": draft.pk}),
        reverse("campaign-detail", kwargs={"pk": running.pk}),
        reverse("inbox"),
        reverse("conversation-detail", kwargs={"pk": conversation.pk}),
        reverse("account-list"),
        reverse("account-new"),
        reverse("phone-list"),
        reverse("template-list"),
    ]


def test_no_page_has_an_inline_script_or_handler_and_each_sends_the_policy(
    site_admin_client, pages
):
    assert len(pages) == 16
    for path in pages:
        response = site_admin_client.get(path)
        body = response.content.decode()

        assert response.status_code == 200, path
        assert INLINE_SCRIPT.findall(body) == [], path
        assert HANDLER_ATTRIBUTE.findall(body) == [], path
        assert EVALUATED_TRIGGER.findall(body) == [], path  # htmx would eval the [filter]
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0], path


def test_the_login_page_has_no_inline_script_and_sends_the_policy(client, db):
    response = client.get(reverse("login"))

    assert INLINE_SCRIPT.findall(response.content.decode()) == []
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_htmx_is_told_not_to_inject_styles_nor_evaluate_strings(marketer_client):
    body = marketer_client.get("/").content.decode()

    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", body).group(1)
    assert json.loads(config) == {"includeIndicatorStyles": False, "allowEval": False}


def test_hsts_is_sent_over_https_only(client, db, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000

    secure = client.get("/healthz", secure=True)
    plain = client.get("/healthz")

    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain


def test_hsts_is_sent_behind_a_tls_proxy_that_says_so(client, db, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    response = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")

    assert response["Strict-Transport-Security"] == "max-age=3600"


def _login(client, password: str):
    return client.post(reverse("login"), {"username": "mara", "password": password})


def test_after_five_wrong_passwords_the_right_one_is_refused(client, marketer, settings):
    settings.AXES_FAILURE_LIMIT = 5
    answers = [_login(client, "wrong").status_code for _ in range(6)]

    refused = _login(client, PASSWORD)

    assert answers == [200, 200, 200, 200, 429, 429]  # the form again, then locked
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_right_password_works_again_after_the_cool_off(client, marketer, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        _login(client, "wrong")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )

    response = _login(client, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(marketer.pk)


@pytest.fixture
def tight_api_rates(monkeypatch):
    # DRF binds the rates to the throttle class when it is imported; the configured rates
    # (thousands a minute) are too many to exhaust in a test.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/minute", "anon": "3/minute"}
    )
    cache.clear()
    yield
    cache.clear()


def test_an_api_token_past_its_rate_gets_429(marketer, tight_api_rates):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")

    answers = [api.get("/api/campaigns/").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]


def test_the_configured_rates_come_from_the_settings(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]

    assert set(rates) == {"user", "anon"}
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ]


@pytest.mark.parametrize("path", ["../_sim/world", "123/../_sim/world", "123?x=1", "12 3/messages"])
def test_the_graph_client_refuses_a_path_an_id_could_bend(path):
    from titanflow.whatsapp.client import GraphClient

    client = GraphClient(base_url="http://127.0.0.1:9", version="v23.0", access_token="t")

    with pytest.raises(ValueError, match="Not a Graph API path"):
        client.url(path)
    assert client.url("100000000000001/phone_numbers").endswith(
        "/v23.0/100000000000001/phone_numbers"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/admin/campaigns/campaign/?status__exact=%00",
        "/admin/campaigns/contact/?phone=%00",
        "/admin/titanflow/auditentry/?action=%00",
        "/admin/templates_app/messagetemplate/?language=%00",
    ],
)
def test_a_nul_in_an_admin_filter_is_a_400_not_a_500(client, staff_user, path):
    client.force_login(staff_user)

    response = client.get(path)

    assert response.status_code == 400
    assert client.get(path.replace("%00", "x")).status_code in (200, 302)


def test_json_nested_past_the_recursion_limit_is_a_400(marketer):
    api = APIClient()
    api.force_authenticate(marketer)
    body = '{"name":' * 100_000 + '"x"' + "}" * 100_000

    response = api.post("/api/campaigns/", body, content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not Campaign.objects.exists()

"""The API answers what its schema says: real responses of every read endpoint and of the
campaign actions, validated against the generated OpenAPI schema (no undeclared field, every
declared type honoured); the schema and the docs page open with a logged-in user's session."""

import re

import pytest
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.engine.reactions import failure_reason
from campaigns.models import Campaign, Contact, Message
from campaigns.services.lifecycle import campaign_launch, campaign_pause
from campaigns.tests.test_lifecycle import _ready_campaign
from inbox.models import Conversation
from tests.factories import (
    ContactFactory,
    InboxMessageFactory,
    MessageFactory,
    PhoneFactory,
    TemplateFactory,
)
from titanflow.whatsapp.errors import classify

pytestmark = pytest.mark.django_db


def _strict(node):
    """OpenAPI 3.0 → JSON Schema: `nullable` becomes a null alternative, and an object with
    declared properties admits no others (an undeclared field is a schema defect)."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _strict(value) for key, value in node.items()}
    if node.get("type") == "object" and "properties" in node:
        node.setdefault("additionalProperties", False)
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def check(schema):
    components = _strict(schema["components"])
    resource = DRAFT202012.create_resource({"components": components})
    registry = Registry().with_resource("urn:api", resource)
    paths = [
        (re.compile("^" + re.sub(r"\{\w+\}", r"[^/]+", path) + "$"), operations)
        for path, operations in schema["paths"].items()
    ]

    def validate(response, method="get"):
        path = response.request["PATH_INFO"]
        [operations] = [ops for pattern, ops in paths if pattern.match(path)]
        answers = operations[method]["responses"][str(response.status_code)]
        body = _strict(answers["content"]["application/json"]["schema"])
        body = _rebase(body)
        Draft202012Validator(body, registry=registry).validate(response.json())
        return response.json()

    return validate


def _rebase(node):
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {**node, "$ref": "urn:api" + node["$ref"]}
    return {key: _rebase(value) for key, value in node.items()}


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")
    return client


@pytest.fixture
def campaign(marketer):
    campaign, sender, [template] = _ready_campaign(contacts=2)
    campaign.owner = marketer
    campaign.columns = ["phone", "name"]
    campaign.import_report = {
        "rows": 4,
        "valid": 3,
        "skipped": {"invalid_phone": 1, "duplicate_in_file": 0, "opted_out": 0},
        "file": {"format": "csv", "encoding": "utf-8", "delimiter": ","},
        "phone_column": "phone",
        "name_column": "name",
        "finished_at": timezone.now().isoformat(),
    }
    campaign.import_report["skipped"].update(recently_messaged=0, missing_variable=0)
    campaign.save(update_fields=["owner", "columns", "import_report"])
    campaign_launch(campaign=campaign, user=marketer)
    campaign_pause(campaign=campaign, reason="Checking", user=marketer)
    sent, failed = campaign.contacts.order_by("id")
    Contact.objects.filter(pk=sent.pk).update(state="sent")
    MessageFactory(contact=sent, phone=sender.phone, template=template, status="read")
    reason = failure_reason(classify(131026), "Undeliverable")
    Contact.objects.filter(pk=failed.pk).update(
        state="failed", last_error_code=131026, last_error=reason, payload_template=template
    )
    ContactFactory(campaign=campaign, state="failed", last_error="No value for body.2: x.")
    campaign.refresh_from_db()
    return campaign


def test_campaign_reads_match_the_schema(api, check, campaign):
    base = f"/api/campaigns/{campaign.pk}"

    assert check(api.get("/api/campaigns/"))["count"] == 1
    assert check(api.get(f"{base}/"))["id"] == campaign.pk
    stats = check(api.get(f"{base}/stats/"))
    timeline = check(api.get(f"{base}/timeline/"))
    recipients = check(api.get(f"{base}/recipients/"))
    clicks = check(api.get(f"{base}/clicks/"))
    assert clicks["by_template"][0]["sent"] >= 1
    failed = check(api.get(f"{base}/recipients/?state=failed&error_code=131026"))
    check(api.get(f"{base}/senders/"))
    check(api.get(f"{base}/mapping/"))
    report = check(api.get(f"{base}/import-report/"))
    check(api.get(f"{base}/preview/"))

    assert {f["kind"] for f in stats["failures"]} == {"refused", "not_sent"}
    assert sum(s["sent"] for s in stats["senders"]) == stats["counters"]["sent"] == 1
    assert [e["kind"] for e in timeline["results"]] == ["launched", "paused"]
    assert recipients["count"] == 3
    assert recipients["results"][0]["message"]["status"] == "read"
    assert [r["error_code"] for r in failed["results"]] == [131026]
    assert report["report"]["skipped"]["invalid_phone"] == 1


def test_campaign_writes_match_the_schema(api, check, campaign, marketer):
    base = f"/api/campaigns/{campaign.pk}"
    template = TemplateFactory()
    phone = PhoneFactory(account=template.account)
    body = {"senders": [{"phone_id": phone.pk, "template_ids": [template.pk], "mps": 2}]}

    check(api.post("/api/campaigns/", {"name": "New"}, format="json"), "post")
    check(api.post(f"{base}/resume/"), "post")
    check(api.post(f"{base}/retry-failed/"), "post")
    retarget = api.post(f"{base}/retarget/", {"audience": "failed"}, format="json")
    assert retarget.status_code == 201, retarget.json()
    check(retarget, "post")
    put = api.put(f"/api/campaigns/{retarget.json()['id']}/senders/", body, format="json")
    assert put.status_code == 200, put.json()
    assert check(put, "put")["senders"][0]["template_ids"] == [template.pk]


def test_asset_and_inbox_reads_match_the_schema(api, check, campaign):
    message = Message.objects.get()
    InboxMessageFactory(conversation__phone=message.phone)
    conversation = Conversation.objects.get()

    check(api.get("/api/phone-numbers/"))
    check(api.get(f"/api/phone-numbers/{message.phone_id}/"))
    check(api.get("/api/templates/"))
    check(api.get(f"/api/templates/{message.template_id}/"))
    check(api.get("/api/accounts/"))
    assert check(api.get("/api/conversations/"))["results"][0]["id"] == conversation.pk
    messages = check(api.get(f"/api/conversations/{conversation.pk}/messages/"))
    assert messages["results"][0]["campaign_id"] is None  # a message no campaign started


def test_every_path_id_is_an_integer(schema):
    types = {
        (path, parameter["schema"]["type"])
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }
    assert types
    assert {kind for _, kind in types} == {"integer"}


def test_every_operation_is_described_for_integrators(schema):
    internal = ("CampaignStateError", "act(", "audit")
    operations = [op for ops in schema["paths"].values() for op in ops.values()]
    assert len(operations) > 30
    for operation in operations:
        text = operation.get("description", "") + operation.get("summary", "")
        assert not any(word in text for word in internal), operation["operationId"]


def test_the_schema_and_the_docs_open_with_the_session(marketer_client):
    schema = marketer_client.get("/api/schema/", headers={"Accept": "application/json"})
    docs = marketer_client.get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/campaigns/{id}/recipients/" in schema.json()["paths"]
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "<script>" not in html and "script-src 'self'" in docs["Content-Security-Policy"]
    anonymous = Client()
    assert anonymous.get("/api/docs/").status_code == 302
    assert anonymous.get("/api/schema/").status_code in (401, 403)


def test_the_docs_page_pins_its_queries(marketer_client, django_assert_num_queries):
    marketer_client.get("/api/docs/")

    with django_assert_num_queries(3):  # session, user, groups
        assert marketer_client.get("/api/docs/").status_code == 200


def test_a_user_without_a_role_gets_no_docs(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="nobody"))

    assert client.get("/api/docs/").status_code == 403


def test_the_ab_test_in_a_campaign_and_its_report_match_the_schema(api, check, marketer):
    campaign, sender, templates = _ready_campaign(contacts=30, templates=2)
    Campaign.objects.filter(pk=campaign.pk).update(owner=marketer, track_clicks=True)
    campaign.refresh_from_db()
    arms = [{"template": templates[0].pk}, {"template": templates[1].pk, "values": {"b": "x"}}]
    body = {"ab_test": {"test_share": 50, "metric": "click", "arms": arms}}
    updated = check(api.patch(f"/api/campaigns/{campaign.pk}/", body, format="json"), "patch")
    assert [arm["label"] for arm in updated["ab_test"]["arms"]] == ["A", "B"]
    assert updated["ab_test"]["winner"] is None
    campaign_launch(campaign=campaign, user=marketer)
    tested = campaign.contacts.filter(ab_arm__isnull=False).order_by("id")
    assert tested.exists()
    for contact in tested:
        MessageFactory(contact=contact, phone=sender.phone, template=templates[0], status="read")

    report = check(api.get(f"/api/campaigns/{campaign.pk}/ab/"))
    assert sum(arm["sent"] for arm in report["arms"]) == tested.count()
    assert [arm["best"] for arm in report["arms"]].count(True) == 1
    assert report["rest"]["waiting"] == campaign.contacts.filter(ab_arm__isnull=True).count()
    assert check(api.get(f"/api/campaigns/{campaign.pk}/"))["ab_test"]["metric"] == "click"
    assert check(api.get("/api/campaigns/"))["results"][0]["ab_test"]["test_share"] == 50

    winner = api.post(f"/api/campaigns/{campaign.pk}/ab/winner/", {"arm": "B"}, format="json")
    assert check(winner, "post")["winner"] == "B"
    again = api.post(f"/api/campaigns/{campaign.pk}/ab/winner/", {"arm": "A"}, format="json")
    assert again.status_code == 409
    assert campaign.contacts.filter(ab_arm__isnull=True, not_before__isnull=False).count() == 0


def test_a_campaign_without_an_ab_test_has_no_report(api, marketer):
    campaign, _, _ = _ready_campaign(contacts=1)
    Campaign.objects.filter(pk=campaign.pk).update(owner=marketer)
    assert api.get(f"/api/campaigns/{campaign.pk}/ab/").status_code == 404

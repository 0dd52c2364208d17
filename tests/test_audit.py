"""Every state change a person makes is in the audit log, whichever door they used, and only
admins read it. Secrets are recorded as changed, never with their value."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from campaigns.counters import campaign_recount
from campaigns.models import Campaign
from templates_app.models import WhatsAppAccount
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    SenderFactory,
    SenderTemplateFactory,
)
from titanflow.audit import audit_record
from titanflow.models import AuditEntry

pytestmark = pytest.mark.django_db


def _ready(**fields):
    campaign = CampaignFactory(status=Campaign.Status.READY, **fields)
    SenderTemplateFactory(sender=SenderFactory(campaign=campaign), position=0)
    ContactFactory.create_batch(2, campaign=campaign)
    return campaign


def _trail(via: str) -> list[tuple[str, str]]:
    entries = AuditEntry.objects.filter(via=via).order_by("id")
    return [(entry.action, entry.username) for entry in entries]


def test_campaign_lifecycle_on_the_pages_is_audited(marketer_client):
    campaign = _ready()
    url = lambda name: reverse(f"campaign-{name}", kwargs={"pk": campaign.pk})  # noqa: E731

    marketer_client.post(url("launch"))
    marketer_client.post(url("pause"), {"reason": "Typo in the offer"})
    marketer_client.post(url("resume"))
    _fail_all(campaign)
    marketer_client.post(url("retry-failed"))
    _fail_all(campaign)
    marketer_client.post(url("retarget"), {"audience": "failed"})
    marketer_client.post(url("cancel"))
    marketer_client.post(url("duplicate"))

    assert _trail("page") == [
        ("campaign.launch", "mara"),
        ("campaign.pause", "mara"),
        ("campaign.resume", "mara"),
        ("campaign.retry", "mara"),
        ("campaign.retarget", "mara"),
        ("campaign.cancel", "mara"),
        ("campaign.duplicate", "mara"),
    ]
    pause = AuditEntry.objects.get(action="campaign.pause")
    assert (pause.object_id, pause.changes) == (str(campaign.pk), {"reason": "Typo in the offer"})
    retarget = AuditEntry.objects.get(action="campaign.retarget")
    assert retarget.changes == {"source_id": campaign.pk, "audience": "failed"}
    assert retarget.object_id != str(campaign.pk)  # the entry is about the new campaign


def test_scheduling_and_deleting_on_the_pages_are_audited(marketer_client):
    campaign = _ready()
    draft = CampaignFactory(status=Campaign.Status.DRAFT)

    marketer_client.post(
        reverse("campaign-launch", kwargs={"pk": campaign.pk}), {"scheduled_at": "2099-05-01T09:30"}
    )
    marketer_client.post(reverse("campaign-delete", kwargs={"pk": draft.pk}))

    assert _trail("page") == [("campaign.schedule", "mara"), ("campaign.delete", "mara")]
    schedule, delete = AuditEntry.objects.order_by("id")
    assert schedule.changes["scheduled_at"].startswith("2099-05-01T09:30")
    assert (delete.object_id, delete.object_repr) == (str(draft.pk), draft.name)


def test_a_refused_transition_writes_nothing(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)

    marketer_client.post(reverse("campaign-pause", kwargs={"pk": campaign.pk}))

    assert not AuditEntry.objects.exists()


def test_campaign_lifecycle_through_the_api_is_audited(marketer):
    api = APIClient()
    api.force_authenticate(marketer)
    campaign = _ready()
    url = lambda name: reverse(f"api-campaign-{name}", kwargs={"pk": campaign.pk})  # noqa: E731

    created = api.post("/api/campaigns/", {"name": "From the API"}, format="json")
    api.post(url("launch"))
    api.post(url("pause"), {"reason": "hold"}, format="json")
    api.post(url("resume"))
    _fail_all(campaign)
    api.post(url("retry-failed"))
    _fail_all(campaign)
    api.post(url("retarget"), {"audience": "failed"}, format="json")
    api.post(url("cancel"))
    api.delete(f"/api/campaigns/{created.json()['id']}/")

    assert _trail("api") == [
        ("campaign.create", "mara"),
        ("campaign.launch", "mara"),
        ("campaign.pause", "mara"),
        ("campaign.resume", "mara"),
        ("campaign.retry", "mara"),
        ("campaign.retarget", "mara"),
        ("campaign.cancel", "mara"),
        ("campaign.delete", "mara"),
    ]
    assert AuditEntry.objects.get(action="campaign.delete").object_id == str(created.json()["id"])


def test_changing_an_accounts_token_in_the_admin_is_audited_without_the_token(
    client, staff_user, monkeypatch
):
    monkeypatch.setattr(
        "templates_app.admin.account_verify_token", lambda **kwargs: None
    )  # Meta is not called from here
    account = AccountFactory(name="Shop")
    client.force_login(staff_user)

    response = client.post(
        f"/admin/templates_app/whatsappaccount/{account.pk}/change/",
        {"waba_id": account.waba_id, "name": "Shop", "access_token": "brand-new-secret"},
    )

    assert response.status_code == 302
    assert WhatsAppAccount.objects.get(pk=account.pk).access_token == "brand-new-secret"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.username) == ("admin.change", "admin", "stefan")
    assert (entry.object_type, entry.object_id) == (
        "templates_app.whatsappaccount",
        str(account.pk),
    )
    assert "brand-new-secret" not in str(entry.changes)
    assert entry.changes == {"admin": [{"changed": {"fields": ["access_token"]}}]}


def test_a_bulk_delete_in_the_admin_audits_every_object(client, staff_user):
    campaigns = CampaignFactory.create_batch(2, status=Campaign.Status.DRAFT)
    client.force_login(staff_user)

    client.post(
        "/admin/campaigns/campaign/",
        {"action": "delete_selected", "_selected_action": [c.pk for c in campaigns], "post": "yes"},
    )

    assert not Campaign.objects.exists()
    deleted = AuditEntry.objects.filter(action="admin.delete", via="admin")
    assert sorted(deleted.values_list("object_id", flat=True)) == sorted(
        str(c.pk) for c in campaigns
    )


def test_secret_fields_are_recorded_as_changed_only(site_admin):
    entry = audit_record(
        user=site_admin,
        action="account.edit",
        obj=AccountFactory(),
        changes={"app_secret": "hush", "name": "New name"},
        via="page",
    )

    assert entry.changes == {"app_secret": "changed", "name": "New name"}


def test_admins_read_and_filter_the_audit_log(
    site_admin_client, marketer, django_assert_num_queries
):
    campaign = CampaignFactory()
    for action in ("campaign.launch", "campaign.pause", "campaign.pause"):
        audit_record(user=marketer, action=action, obj=campaign, via="page")
    audit_record(user=None, action="user.create", obj=marketer, via="command")

    with django_assert_num_queries(6):  # session, user, groups, count, page, action choices
        page = site_admin_client.get("/audit/?user=mara&action=campaign.pause")

    text = page.content.decode()
    assert page.status_code == 200
    assert text.count("<code>campaign.pause</code>") == 2
    assert "<code>campaign.launch</code>" not in text
    assert "<code>user.create</code>" not in text


@pytest.mark.parametrize("query", ["user=ma%00ra", "action=campaign.pause%00"])
def test_a_nul_in_the_audit_filters_is_ignored_not_a_500(site_admin_client, marketer, query):
    audit_record(user=marketer, action="campaign.pause", via="page")

    page = site_admin_client.get(f"/audit/?{query}")

    assert page.status_code == 200
    assert "<code>campaign.pause</code>" in page.content.decode()


def test_the_audit_log_is_paginated(site_admin_client, marketer):
    for n in range(51):
        audit_record(user=marketer, action=f"test.{n}", via="command")

    first = site_admin_client.get("/audit/").content.decode()
    second = site_admin_client.get("/audit/?page=2").content.decode()

    assert "<code>test.50</code>" in first and "<code>test.0</code>" not in first
    assert "<code>test.0</code>" in second


def test_the_audit_log_is_read_only_in_the_admin(client, staff_user, marketer):
    entry = audit_record(user=marketer, action="campaign.launch", via="page")
    client.force_login(staff_user)

    assert client.get("/admin/titanflow/auditentry/").status_code == 200
    assert client.get("/admin/titanflow/auditentry/add/").status_code == 403
    client.post(f"/admin/titanflow/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_an_admin_changes_a_role_on_the_users_page(site_admin_client, marketer):
    response = site_admin_client.post(f"/users/{marketer.pk}/role/", {"role": "viewer"})

    assert response.status_code == 302
    assert list(marketer.groups.values_list("name", flat=True)) == ["viewers"]
    entry = AuditEntry.objects.get(action="user.role")
    assert (entry.username, entry.via, entry.object_id) == ("ada", "page", str(marketer.pk))
    assert entry.changes == {"role": ["marketer", "viewer"]}


def test_an_admin_cannot_demote_themself(site_admin_client, site_admin):
    site_admin_client.post(f"/users/{site_admin.pk}/role/", {"role": "viewer"})

    assert list(site_admin.groups.values_list("name", flat=True)) == ["admins"]
    assert not AuditEntry.objects.exists()


def test_the_users_page_shows_each_role_in_constant_queries(
    site_admin_client, marketer, viewer, other_marketer, django_assert_num_queries
):
    with django_assert_num_queries(6):  # session, user, groups, count, users, their role groups
        page = site_admin_client.get("/users/").content.decode()

    assert page.count("data-user=") == 4
    assert '<option value="viewer" selected>' in page


def test_syncing_accounts_is_audited_on_pages_and_api(marketer_client, marketer):
    first, second = AccountFactory(name="A shop"), AccountFactory(name="B shop")
    api = APIClient()
    api.force_authenticate(marketer)

    marketer_client.post(f"/assets/accounts/{first.pk}/sync/")
    marketer_client.post("/assets/sync/")
    api.post(f"/api/accounts/{second.pk}/sync/")

    synced = AuditEntry.objects.filter(action="account.sync").order_by("id")
    assert [(e.via, e.object_id) for e in synced] == [
        ("page", str(first.pk)),
        ("page", str(first.pk)),
        ("page", str(second.pk)),
        ("api", str(second.pk)),
    ]


def _fail_all(campaign):
    """As if every send had failed on a transient error (counters kept by a recount)."""
    campaign.contacts.update(state="failed", last_error_code=131000, last_error="Meta hiccup")
    campaign_recount(campaign_id=campaign.pk)

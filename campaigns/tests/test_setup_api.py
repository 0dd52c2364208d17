"""The setup API: an integrator builds a campaign end to end with a token, as the wizard does."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.importing.load import import_run
from campaigns.models import Campaign
from tests.factories import CampaignFactory, PhoneFactory, TemplateFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEFAULT_PHONE_REGION = "AE"


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")
    return client


LIST = b"phone,name,code\n0501234567,Ana,A1\n0501234567,Ana,A1\n0507654321,Bo,\n"


def test_an_integrator_builds_a_campaign_and_previews_the_exact_payload(api):
    created = api.post("/api/campaigns/", {"name": "API spring", "dedup_days": 3}, format="json")
    assert created.status_code == 201
    campaign_id = created.json()["id"]
    assert created.json()["links"]["launch"].endswith(f"/api/campaigns/{campaign_id}/launch/")

    upload = api.post(
        f"/api/campaigns/{campaign_id}/contacts/",
        {"file": SimpleUploadedFile("list.csv", LIST)},
        format="multipart",
    )
    assert upload.status_code == 202
    assert upload.json()["status"] == "importing"
    import_run(campaign_id=campaign_id)
    report = api.get(f"/api/campaigns/{campaign_id}/import-report/").json()
    assert report["status"] == "ready"
    assert report["report"]["skipped"]["duplicate_in_file"] == 1

    phone = PhoneFactory()
    template = TemplateFactory(account=phone.account, name="promo")
    senders = api.put(
        f"/api/campaigns/{campaign_id}/senders/",
        {"senders": [{"phone_id": phone.pk, "template_ids": [template.pk], "mps": 5}]},
        format="json",
    )
    assert senders.status_code == 200
    [sender] = senders.json()["senders"]
    assert sender == {
        "id": sender["id"],
        "phone_id": phone.pk,
        "phone_number_id": phone.phone_number_id,
        "mps": 5,
        "state": "active",
        "template_ids": [template.pk],
    }
    # The same shape in as out, and on GET.
    assert api.get(f"/api/campaigns/{campaign_id}/senders/").json() == senders.json()

    rules = {"header.1": {"text": "Hey"}, "body.1": {"column": "name"}}
    refused = api.put(
        f"/api/campaigns/{campaign_id}/mapping/",
        {"mapping": {str(template.pk): rules}},
        format="json",
    )
    assert refused.status_code == 400
    assert "body.2" in refused.json()["mapping"][str(template.pk)]

    rules["body.2"] = {"column": "code"}
    saved = api.put(
        f"/api/campaigns/{campaign_id}/mapping/",
        {"mapping": {str(template.pk): rules}},
        format="json",
    )
    assert saved.status_code == 200
    assert Campaign.objects.get(pk=campaign_id).skipped_count == 2  # duplicate + Bo's empty code

    preview = api.get(f"/api/campaigns/{campaign_id}/preview/").json()
    assert len(preview) == 1
    assert preview[0]["payload"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "971501234567",
        "type": "template",
        "template": {
            "name": "promo",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "Hey"}]},
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A1"}],
                },
            ],
        },
    }


def test_senders_refuse_a_template_of_another_account(api, marketer):
    campaign = CampaignFactory(owner=marketer, status="draft")
    response = api.put(
        f"/api/campaigns/{campaign.pk}/senders/",
        {"senders": [{"phone_id": PhoneFactory().pk, "template_ids": [TemplateFactory().pk]}]},
        format="json",
    )

    assert response.status_code == 400
    assert "another WhatsApp account" in response.json()["senders"][0]


def test_skipped_rows_download_as_csv(api, marketer):
    campaign = CampaignFactory(owner=marketer, status="draft")
    api.post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {"file": SimpleUploadedFile("list.csv", LIST)},
        format="multipart",
    )
    import_run(campaign_id=campaign.pk)

    response = api.get(f"/api/campaigns/{campaign.pk}/skipped.csv/", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[1].startswith("3,duplicate_in_file,")


def test_list_filters_by_status_and_delete_removes_a_draft(api, marketer):
    draft = CampaignFactory(owner=marketer, status="draft")
    CampaignFactory(owner=marketer, status="completed")

    listed = api.get("/api/campaigns/", {"status": "draft"}).json()
    deleted = api.delete(f"/api/campaigns/{draft.pk}/")

    assert [c["id"] for c in listed["results"]] == [draft.pk]
    assert deleted.status_code == 204
    assert not Campaign.objects.filter(pk=draft.pk).exists()


def test_a_file_without_phones_is_a_clear_400(api, marketer):
    campaign = CampaignFactory(owner=marketer, status="draft")
    response = api.post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {"file": SimpleUploadedFile("x.csv", b"a,b\n1,2\n")},
        format="multipart",
    )

    assert response.status_code == 400
    assert "No phone column" in response.json()["file"][0]


def test_a_draft_is_renamed_and_reimported_with_another_phone_column(api, marketer):
    campaign = CampaignFactory(owner=marketer, status="draft")
    api.post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {"file": SimpleUploadedFile("list.csv", LIST), "phone_column": "name"},
        format="multipart",
    )
    import_run(campaign_id=campaign.pk)
    assert api.get(f"/api/campaigns/{campaign.pk}/import-report/").json()["report"]["valid"] == 0

    renamed = api.patch(f"/api/campaigns/{campaign.pk}/", {"name": "Renamed"}, format="json")
    again = api.post(
        f"/api/campaigns/{campaign.pk}/reimport/", {"phone_column": "phone"}, format="json"
    )
    import_run(campaign_id=campaign.pk)

    assert renamed.json()["name"] == "Renamed"
    assert again.status_code == 202
    report = api.get(f"/api/campaigns/{campaign.pk}/import-report/").json()
    assert report["report"]["valid"] == 2


def test_a_running_campaign_cannot_be_renamed(api, marketer):
    running = CampaignFactory(owner=marketer, status="running")
    response = api.patch(f"/api/campaigns/{running.pk}/", {"name": "x"}, format="json")

    assert response.status_code == 400
    assert "only a draft" in response.json()["detail"]


def test_an_upload_reads_national_numbers_in_the_region_given(api, marketer):
    campaign = CampaignFactory(owner=marketer, status=Campaign.Status.DRAFT)
    upload = api.post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {
            "file": SimpleUploadedFile("list.csv", b"phone,name\n07911 123456,Ann\n"),
            "phone_region": "GB",
        },
        format="multipart",
    )
    import_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()

    assert upload.status_code == 202
    assert campaign.phone_region == "GB"
    assert list(campaign.contacts.values_list("phone", "state")) == [("+447911123456", "pending")]


def test_an_unknown_region_is_a_clear_400(api, marketer):
    campaign = CampaignFactory(owner=marketer, status=Campaign.Status.DRAFT)
    response = api.post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {"file": SimpleUploadedFile("list.csv", LIST), "phone_region": "ZZ"},
        format="multipart",
    )

    campaign.refresh_from_db()
    assert response.status_code == 400
    assert "is not a region code" in response.json()["file"][0]
    assert not campaign.source_file


def test_a_reimport_may_change_the_region(api, marketer):
    campaign = CampaignFactory(owner=marketer, status=Campaign.Status.DRAFT)
    api.post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {"file": SimpleUploadedFile("list.csv", b"phone,name\n07911 123456,Ann\n")},
        format="multipart",
    )
    import_run(campaign_id=campaign.pk)
    assert campaign.contacts.get().state == "skipped"  # not a number in AE

    response = api.post(
        f"/api/campaigns/{campaign.pk}/reimport/",
        {"phone_column": "phone", "phone_region": "GB"},
        format="json",
    )
    import_run(campaign_id=campaign.pk)

    assert response.status_code == 202
    assert list(campaign.contacts.values_list("phone", flat=True)) == ["+447911123456"]

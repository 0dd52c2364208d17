"""Stored lists do not outlive their use: deleted with their campaign by every path, after a
failed import, and by the periodic prune once past the retention period."""

import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.importing import import_start
from campaigns.importing.service import import_files_prune
from campaigns.models import Campaign
from tests.factories import CampaignFactory

LIST = b"phone,name\n0501234567,Ana\n"
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEFAULT_PHONE_REGION = "AE"
    settings.IMPORT_FILE_RETENTION_DAYS = 30
    return settings.MEDIA_ROOT


def with_list(**fields) -> Campaign:
    campaign = CampaignFactory(**fields)
    campaign.source_file.save("list.csv", ContentFile(LIST))
    return campaign


def age(path: str, days: float) -> None:
    moment = time.time() - days * DAY
    os.utime(path, (moment, moment))


def test_deleting_a_campaign_in_the_admin_deletes_its_list(
    client, staff_user, django_capture_on_commit_callbacks
):
    campaign = with_list(status=Campaign.Status.RUNNING)
    path = campaign.source_file.path
    client.force_login(staff_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not os.path.exists(path)


def test_the_admin_bulk_delete_action_deletes_every_list(
    client, staff_user, django_capture_on_commit_callbacks
):
    campaigns = [with_list(), with_list()]
    paths = [c.source_file.path for c in campaigns]
    client.force_login(staff_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/campaigns/campaign/",
            {
                "action": "delete_selected",
                "_selected_action": [c.pk for c in campaigns],
                "post": "yes",
            },
        )

    assert not Campaign.objects.exists()
    assert [os.path.exists(p) for p in paths] == [False, False]


def test_deleting_a_draft_through_the_api_deletes_its_list(
    marketer, django_capture_on_commit_callbacks
):
    campaign = with_list(owner=marketer, status=Campaign.Status.DRAFT)
    path = campaign.source_file.path
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/campaigns/{campaign.pk}/")

    assert response.status_code == 204
    assert not os.path.exists(path)


def test_a_rolled_back_delete_keeps_the_list(db):
    campaign = with_list()
    path = campaign.source_file.path

    campaign.delete()  # inside the test's transaction, which never commits

    assert os.path.exists(path)


def test_the_prune_deletes_old_lists_of_settled_campaigns_and_keeps_the_rest(db):
    old = with_list(status=Campaign.Status.COMPLETED)
    recent = with_list(status=Campaign.Status.READY)
    importing = with_list(status=Campaign.Status.IMPORTING)
    age(old.source_file.path, 31)
    age(importing.source_file.path, 31)
    old_path = old.source_file.path

    deleted = import_files_prune()

    assert deleted == 1
    old.refresh_from_db()
    assert old.source_file.name == "" and not os.path.exists(old_path)
    assert os.path.exists(recent.source_file.path)
    assert os.path.exists(importing.source_file.path)


def test_the_prune_deletes_orphan_files_but_not_one_being_saved(db, media):
    kept = with_list()
    folder = media / "imports" / "2026" / "11"
    folder.mkdir(parents=True, exist_ok=True)
    orphan, fresh = folder / "orphan.csv", folder / "fresh.csv"
    orphan.write_bytes(LIST)
    fresh.write_bytes(LIST)
    age(str(orphan), 2)

    assert import_files_prune() == 1

    assert not orphan.exists()
    assert fresh.exists()  # may belong to an upload whose transaction has not committed
    assert os.path.exists(kept.source_file.path)


def test_a_retention_of_zero_keeps_lists_forever(db, settings):
    settings.IMPORT_FILE_RETENTION_DAYS = 0
    campaign = with_list(status=Campaign.Status.COMPLETED)
    age(campaign.source_file.path, 400)

    assert import_files_prune() == 0
    assert os.path.exists(campaign.source_file.path)


def test_the_prune_runs_on_the_beat_schedule():
    from titanflow.celery import app

    jobs = {job["task"] for job in app.conf.beat_schedule.values()}
    assert "campaigns.prune_import_files" in jobs
    assert "campaigns.prune_import_files" in app.tasks


def test_an_upload_stores_one_file_and_a_replacement_removes_the_first(db, media):
    campaign = CampaignFactory(status=Campaign.Status.DRAFT)
    import_start(campaign=campaign, uploaded_file=SimpleUploadedFile("a.csv", LIST))
    import_start(campaign=campaign, uploaded_file=SimpleUploadedFile("b.csv", LIST))

    files = [f for _, _, names in os.walk(media) for f in names]
    assert files == [os.path.basename(campaign.source_file.name)]


def test_a_campaign_that_failed_before_its_task_ran_keeps_its_list(db):
    from campaigns.importing.service import import_process

    campaign = with_list(status=Campaign.Status.FAILED, import_error="No phone column: pick one.")

    import_process(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert os.path.exists(campaign.source_file.path)

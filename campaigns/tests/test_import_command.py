"""`manage.py import_contacts`: the operator's path, with a progress line and a summary."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign, Contact
from tests.factories import CampaignFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEFAULT_PHONE_REGION = "AE"


def test_command_imports_in_process_and_reports_skips(db, tmp_path):
    campaign = CampaignFactory(status=Campaign.Status.DRAFT)
    path = tmp_path / "list.csv"
    path.write_text("tel;who\n0501234567;Ana\n0501234567;Ana\nxx;Bo\n", encoding="utf-8")
    out = StringIO()

    call_command("import_contacts", campaign.pk, path, "--phone-column", "tel", stdout=out)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.READY
    assert Contact.objects.filter(campaign=campaign, state="pending").count() == 1
    assert "rows/s" in out.getvalue()
    assert "Imported 3 rows" in out.getvalue()
    assert "duplicate_in_file: 1" in out.getvalue()


def test_command_refuses_a_file_without_the_phone_column(db, tmp_path):
    campaign = CampaignFactory(status=Campaign.Status.DRAFT)
    path = tmp_path / "list.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")

    with pytest.raises(CommandError, match="No phone column"):
        call_command("import_contacts", campaign.pk, path, "--phone-column", "tel")
    assert not Contact.objects.filter(campaign=campaign).exists()


def test_command_reads_national_numbers_in_the_region_given(db, tmp_path):
    campaign = CampaignFactory(status=Campaign.Status.DRAFT)
    path = tmp_path / "list.csv"
    path.write_text("tel,who\n07911 123456,Ann\n", encoding="utf-8")

    call_command("import_contacts", campaign.pk, path, "--region", "GB", stdout=StringIO())

    assert list(Contact.objects.filter(campaign=campaign).values_list("phone", flat=True)) == [
        "+447911123456"
    ]

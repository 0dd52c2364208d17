import csv
import io

import pytest
from django.http import StreamingHttpResponse

from campaigns.models import Campaign, Contact, Message
from tests.factories import CampaignFactory, ContactFactory, MessageFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def _rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_export_has_one_row_per_contact_with_its_latest_message(marketer_client):
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)
    retried = ContactFactory(campaign=campaign, phone="+971500000001", state=Contact.State.SENT)
    MessageFactory(contact=retried, status=Message.Status.FAILED, error_code=132015)
    MessageFactory(
        contact=retried, status=Message.Status.READ, template=TemplateFactory(name="plan_b")
    )
    ContactFactory(
        campaign=campaign,
        phone="+971500000002",
        state=Contact.State.SKIPPED,
        skip_reason="opted_out",
    )
    ContactFactory(phone="+971500000003")  # another campaign's

    response = marketer_client.get(f"/campaigns/{campaign.pk}/export.csv")

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _rows(response)
    assert [row["phone"] for row in rows] == ["+971500000001", "+971500000002"]
    assert rows[0]["template"] == "plan_b"
    assert rows[0]["message_status"] == "read"
    assert rows[1]["state"] == "skipped"
    assert rows[1]["skip_reason"] == "opted_out"
    assert rows[1]["wamid"] == ""


def test_export_reads_through_one_cursor_however_many_contacts(
    marketer_client, django_assert_num_queries
):
    campaign = CampaignFactory()
    Contact.objects.bulk_create(
        Contact(campaign=campaign, phone=f"+9715{n:08d}") for n in range(4500)
    )
    marketer_client.get("/")

    with django_assert_num_queries(5):  # the last one DECLAREs a server-side cursor
        rows = _rows(marketer_client.get(f"/campaigns/{campaign.pk}/export.csv"))

    assert len(rows) == 4500
    assert rows[-1]["phone"] == "+971500004499"


def test_names_from_uploaded_files_cannot_become_spreadsheet_formulas(marketer_client):
    campaign = CampaignFactory()
    ContactFactory(campaign=campaign, name='=HYPERLINK("http://x")', phone="+971500000001")

    rows = _rows(marketer_client.get(f"/campaigns/{campaign.pk}/export.csv"))

    assert rows[0]["name"].startswith("'=")
    assert rows[0]["phone"] == "+971500000001"


def test_results_carry_the_lists_own_columns_under_the_same_formula_guard(marketer_client):
    campaign = CampaignFactory(columns=["phone", "Full Name", "City", "Note"])
    contact = ContactFactory(campaign=campaign, phone="+971500000001", name="Ana")
    contact.variables = {"phone": "+971 50 000 0001", "Full Name": "Ana", "City": "Dubai"}
    contact.variables["Note"] = "=1+1"
    contact.save(update_fields=["variables"])
    MessageFactory(contact=contact, phone__display_phone_number="+971 50 111 2222")

    rows = _rows(marketer_client.get(f"/campaigns/{campaign.pk}/export.csv"))

    assert rows[0]["list_phone"] == "+971 50 000 0001"
    assert (rows[0]["Full Name"], rows[0]["City"]) == ("Ana", "Dubai")
    assert rows[0]["Note"] == "'=1+1"
    # Numbers read the same whichever column holds them: no apostrophe on either.
    assert (rows[0]["phone"], rows[0]["sender"]) == ("+971500000001", "+971 50 111 2222")

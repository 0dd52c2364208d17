"""The reporting API: recipients one by one with filters, the results file, the timeline."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.models import Campaign, Contact, Message
from tests.factories import CampaignFactory, ContactFactory, MessageFactory, TemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")
    return client


@pytest.fixture
def campaign(marketer):
    return CampaignFactory(owner=marketer, status=Campaign.Status.COMPLETED, columns=["City"])


def _recipients(api, campaign, query=""):
    response = api.get(f"/api/campaigns/{campaign.pk}/recipients/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_recipients_show_each_contacts_latest_message_and_filter(api, campaign):
    spring, plan_b = TemplateFactory(name="spring_sale"), TemplateFactory(name="plan_b")
    retried = ContactFactory(campaign=campaign, state=Contact.State.SENT)
    MessageFactory(contact=retried, template=spring, status=Message.Status.FAILED)
    last = MessageFactory(contact=retried, template=plan_b, status=Message.Status.READ)
    ContactFactory(
        campaign=campaign,
        state=Contact.State.FAILED,
        last_error_code=131026,
        payload_template=spring,
    )
    ContactFactory(campaign=campaign, state=Contact.State.SKIPPED, skip_reason="opted_out")

    everyone = _recipients(api, campaign)
    by_template = _recipients(api, campaign, f"?template={spring.pk}")
    by_sender = _recipients(api, campaign, f"?sender={last.phone.phone_number_id}")
    by_code = _recipients(api, campaign, "?error_code=131026&state=failed")

    assert everyone["count"] == 3
    first = everyone["results"][0]
    assert first["message"]["template_name"] == "plan_b"
    assert first["message"]["status"] == "read"
    assert everyone["results"][2]["message"] is None
    assert [r["error_code"] for r in by_template["results"]] == [131026]
    assert [r["id"] for r in by_sender["results"]] == [retried.pk]
    assert by_code["count"] == 1


def test_recipients_take_the_same_queries_however_many_on_the_page(
    api, campaign, django_assert_num_queries
):
    for _ in range(3):
        MessageFactory(contact=ContactFactory(campaign=campaign, state="sent"))
    api.get(f"/api/campaigns/{campaign.pk}/recipients/")
    for _ in range(10):
        MessageFactory(contact=ContactFactory(campaign=campaign, state="sent"))

    # token, user's role, campaign, count, the page, its messages
    with django_assert_num_queries(6):
        assert _recipients(api, campaign)["count"] == 13


def test_another_marketers_campaign_is_not_found(api, other_marketer):
    theirs = CampaignFactory(owner=other_marketer)

    for path in ("stats/", "timeline/", "recipients/", "results.csv"):
        assert api.get(f"/api/campaigns/{theirs.pk}/{path}").status_code == 404, path


def test_the_api_serves_the_pages_results_file(api, campaign, marketer_client):
    contact = ContactFactory(campaign=campaign, name="=cmd")
    contact.variables = {**contact.variables, "City": "Dubai"}
    contact.save(update_fields=["variables"])

    from_api = api.get(f"/api/campaigns/{campaign.pk}/results.csv")
    from_page = marketer_client.get(f"/campaigns/{campaign.pk}/export.csv")

    assert from_api.status_code == 200
    assert from_api["Content-Type"].startswith("text/csv")
    body = b"".join(from_api.streaming_content).decode()
    assert body == b"".join(from_page.streaming_content).decode()
    header, row = body.splitlines()
    assert header.endswith(",City") and row.endswith(",Dubai")
    assert ",'=cmd," in row

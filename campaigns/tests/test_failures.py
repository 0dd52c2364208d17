"""Failures Meta reports by webhook after accepting a send get the API errors' reactions."""

import pytest

from campaigns.models import Campaign, Contact, OptOut
from campaigns.services.failures import (
    FailedStatus,
    failed_statuses_apply,
    senders_exhaust_for_account,
    senders_exhaust_for_phone,
)
from templates_app.models import MessageTemplate
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def running():
    campaign = CampaignFactory(status=Campaign.Status.RUNNING, sent_count=1)
    first = SenderFactory(campaign=campaign)
    templates = [TemplateFactory(name="first"), TemplateFactory(name="second")]
    for position, template in enumerate(templates):
        SenderTemplateFactory(sender=first, template=template, position=position)
    first.current_template = templates[0]
    first.save(update_fields=["current_template"])
    contact = ContactFactory(campaign=campaign, state="sent", payload='{"x":1}')
    message = MessageFactory(contact=contact, phone=first.phone, template=templates[0])
    return campaign, first, templates, contact, message


def test_a_template_failure_moves_the_sender_on_and_resends_the_contact(running):
    campaign, sender, templates, contact, message = running

    failed_statuses_apply(failures=[FailedStatus(message.pk, 132015, "Template paused")])

    sender.refresh_from_db()
    assert sender.current_template == templates[1]
    assert MessageTemplate.objects.get(pk=templates[0].pk).status == "PAUSED"
    contact.refresh_from_db()
    assert contact.state == "pending"
    assert contact.last_error_code == 132015
    assert Campaign.objects.get(pk=campaign.pk).sent_count == 0


def test_a_recipient_failure_ends_the_contact_and_131050_records_an_opt_out(running):
    campaign, _, _, contact, message = running

    failed_statuses_apply(failures=[FailedStatus(message.pk, 131050, "Stopped", "User said stop")])

    contact.refresh_from_db()
    assert contact.state == "failed"
    assert "User said stop" in contact.last_error
    assert OptOut.objects.filter(phone=contact.phone, reason="131050").exists()
    assert Campaign.objects.get(pk=campaign.pk).failed_count == 1


def test_a_phone_failure_exhausts_the_number_and_pauses_a_campaign_left_without_one(running):
    campaign, sender, _, contact, message = running

    failed_statuses_apply(failures=[FailedStatus(message.pk, 133010, "Not registered")])

    sender.refresh_from_db()
    assert sender.state == "exhausted"
    assert sender.exhausted_code == 133010
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.pause_reason.startswith(f"All numbers exhausted: {sender.phone}:")
    assert "(133010)" in campaign.pause_reason
    assert Contact.objects.get(pk=contact.pk).state == "pending"


def test_applying_the_same_failure_twice_changes_nothing_more(running):
    campaign, _, _, contact, message = running
    failure = FailedStatus(message.pk, 131026, "Undeliverable")

    failed_statuses_apply(failures=[failure])
    failed_statuses_apply(failures=[failure])

    assert Campaign.objects.get(pk=campaign.pk).failed_count == 1


def test_an_account_restriction_exhausts_every_number_of_that_account_only():
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    phone = PhoneFactory()
    sibling = PhoneFactory(account=phone.account)
    other = SenderFactory(campaign=campaign)
    SenderFactory(campaign=campaign, phone=phone)
    SenderFactory(campaign=campaign, phone=sibling)

    exhausted = senders_exhaust_for_account(
        account_id=phone.account_id, code=368, reason="Restricted"
    )

    assert exhausted == 2
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING
    assert campaign.senders.get(state="active") == other
    assert senders_exhaust_for_phone(phone_id=other.phone_id, code=133010, reason="Gone") == 1
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED

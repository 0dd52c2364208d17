"""Meta's own deliveries (recorded by pywa, MIT) through the door and the processor."""

import json
from pathlib import Path

import pytest

from campaigns.models import Campaign, Contact, Message, OptOut
from inbox.models import InboxMessage
from templates_app.models import MessageTemplate, WhatsAppAccount
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    OptOutFactory,
    PhoneFactory,
    TemplateFactory,
)
from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "meta-webhooks-pywa"


def _cases() -> list[tuple[str, str]]:
    files = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []
    return [(path.stem, name) for path in files for name in json.loads(path.read_text())]


pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures are not on this machine"),
]


def _delivery(file: str, case: str) -> dict:
    return json.loads((FIXTURES / f"{file}.json").read_text())[case]


@pytest.fixture
def world():
    """The accounts, numbers, templates and campaign message the recorded deliveries name."""
    main = AccountFactory(waba_id="102290129340398")
    other = AccountFactory(waba_id="5467539754836534")
    AccountFactory(waba_id="2949482758682047")
    phone = PhoneFactory(account=other, phone_number_id="1122334455667")
    PhoneFactory(
        account=main, phone_number_id="106540352242922", display_phone_number="+1 555 078 3881"
    )
    for meta_id in ("1689556908129832", "1689556908129835", "806312974732579", "12345678"):
        TemplateFactory(account=main, meta_template_id=meta_id)
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    contact = ContactFactory(campaign=campaign, phone="+972987654321", state=Contact.State.SENT)
    MessageFactory(contact=contact, campaign=campaign, phone=phone, wamid="wamid.xyzxyz==")
    MessageFactory(
        contact=ContactFactory(campaign=campaign, state=Contact.State.SENT),
        campaign=campaign,
        phone=phone,
        wamid="wamid.xyzxyz",
    )
    return {"campaign": campaign}


def _deliver(post_delivery, delivery: dict, label: str = ""):
    assert post_delivery(delivery).status_code == 200, label
    result = deliveries_process()
    event = WebhookEvent.objects.order_by("-id").first()
    assert event.processed_at is not None, label
    assert event.error == "", label
    return result


def test_every_recorded_delivery_is_accepted_and_processed(post_delivery, world):
    cases = _cases()
    assert len(cases) > 50
    for file, case in cases:
        _deliver(post_delivery, _delivery(file, case), f"{file}:{case}")
    assert WebhookEvent.objects.filter(processed_at__isnull=False, error="").count() == len(cases)


def test_every_recorded_delivery_with_a_wrong_signature_is_refused(post_delivery):
    for file, case in _cases():
        response = post_delivery(_delivery(file, case), secret="forged")
        assert response.status_code == 403, f"{file}:{case}"
    assert not WebhookEvent.objects.exists()


def test_recorded_statuses_move_the_message_forward(post_delivery, world):
    for case in ("sent", "delivered", "read", "failed"):
        _deliver(post_delivery, _delivery("message_status", case))
    message = Message.objects.get(wamid="wamid.xyzxyz")
    assert message.status == "read"
    assert message.delivered_at and message.read_at
    campaign = Campaign.objects.get(pk=world["campaign"].pk)
    assert (campaign.delivered_count, campaign.read_count) == (1, 1)


def test_recorded_failed_status_records_the_error(post_delivery, world):
    _deliver(post_delivery, _delivery("message_status", "failed"))
    message = Message.objects.get(wamid="wamid.xyzxyz")
    assert (message.status, message.error_code) == ("failed", 130472)


def test_recorded_template_events(post_delivery, world):
    _deliver(post_delivery, _delivery("template_status_update", "rejected"))
    _deliver(post_delivery, _delivery("template_quality_update", "yellow"))
    rejected = MessageTemplate.objects.get(meta_template_id="1689556908129835")
    assert rejected.status == "REJECTED" and not rejected.is_sendable
    assert "INVALID_FORMAT" in rejected.status_reason
    assert MessageTemplate.objects.get(meta_template_id="806312974732579").quality_score == (
        "YELLOW"
    )
    approved = MessageTemplate.objects.get(meta_template_id="1689556908129832")
    MessageTemplate.objects.filter(pk=approved.pk).update(status="PAUSED")
    _deliver(post_delivery, _delivery("template_status_update", "approved"))
    approved.refresh_from_db()
    assert approved.status == "APPROVED" and approved.is_sendable


def test_recorded_marketing_resume_removes_the_opt_out(post_delivery, world):
    # Stopped long before the recorded resume: the resume is newer and lifts it.
    OptOutFactory(phone="+16505551234", changed_at="2000-01-01T00:00:00Z")
    _deliver(post_delivery, _delivery("user_marketing_preferences", "resume"))
    assert not OptOut.objects.active().filter(phone="+16505551234").exists()


def test_recorded_text_message_lands_in_the_inbox(post_delivery, world):
    _deliver(post_delivery, _delivery("message", "text"))
    message = InboxMessage.objects.get()
    assert (message.body, message.conversation.wa_id) == ("Body Text", "972987654321")
    assert message.conversation.unread_count == 1


def test_recorded_reply_is_attributed_by_context(post_delivery, world):
    _deliver(post_delivery, _delivery("message", "reply"))
    reply = InboxMessage.objects.get()
    assert reply.campaign_message.wamid == "wamid.xyzxyz=="
    assert Campaign.objects.get(pk=world["campaign"].pk).replied_count == 1


def test_recorded_account_restriction_restricts_the_account(post_delivery, world):
    _deliver(post_delivery, _delivery("account_update", "account_restriction"))
    account = WhatsAppAccount.objects.get(waba_id="102290129340398")
    assert account.health == "restricted"
    assert "RESTRICTED_BIZ_INITIATED_MESSAGING" in account.health_detail

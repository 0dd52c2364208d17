"""An account's own app secret speaks for that account only; META_APP_SECRET for all."""

import pytest

from campaigns.models import Campaign, CampaignSender, Contact, Message
from templates_app.models import MessageTemplate, WhatsAppAccount
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    TemplateFactory,
)
from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process
from webhooks.tests import deliveries as d

pytestmark = pytest.mark.django_db

ATTACKER_WABA = "190000000000666"
ATTACKER_PHONE = "290000000000666"
RESTRICTION = {
    "event": "ACCOUNT_RESTRICTION",
    "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}],
}


@pytest.fixture
def victim():
    account = AccountFactory(waba_id=d.WABA_ID, app_secret="")
    phone = PhoneFactory(account=account, phone_number_id=d.PHONE_NUMBER_ID)
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    SenderFactory(campaign=campaign, phone=phone)
    return {
        "account": account,
        "template": TemplateFactory(account=account, meta_template_id="777"),
        "campaign": campaign,
    }


@pytest.fixture
def attacker():
    """A marketer's account, added with an app secret of their choosing."""
    account = AccountFactory(waba_id=ATTACKER_WABA, app_secret="chosen-by-the-marketer")
    PhoneFactory(account=account, phone_number_id=ATTACKER_PHONE)
    return account


def test_a_forged_delivery_for_another_account_is_refused_and_changes_nothing(
    post_delivery, victim, attacker
):
    forged = d.template_status("777", "PAUSED")
    forged["entry"] += d.envelope(("account_update", RESTRICTION))["entry"]
    response = post_delivery(forged, secret=attacker.app_secret)
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()
    deliveries_process()
    assert MessageTemplate.objects.get(pk=victim["template"].pk).status == "APPROVED"
    assert WhatsAppAccount.objects.get(pk=victim["account"].pk).health == "ok"
    sender = CampaignSender.objects.get(campaign=victim["campaign"])
    assert sender.state == CampaignSender.State.ACTIVE


def test_an_own_entry_cannot_carry_another_accounts_number(post_delivery, victim, attacker):
    forged = d.incoming("wamid.FORGED", text="STOP")
    forged["entry"][0]["id"] = ATTACKER_WABA
    assert post_delivery(forged, secret=attacker.app_secret).status_code == 403
    assert not WebhookEvent.objects.exists()


def test_an_account_secret_signs_its_own_entries(post_delivery, attacker):
    own = d.envelope(("account_update", RESTRICTION), waba_id=ATTACKER_WABA)
    assert post_delivery(own, secret=attacker.app_secret).status_code == 200
    deliveries_process()
    assert WhatsAppAccount.objects.get(pk=attacker.pk).health == "restricted"


def test_a_secret_shared_by_two_accounts_signs_entries_of_both(post_delivery, victim, attacker):
    victim["account"].app_secret = attacker.app_secret  # one Meta app serving both WABAs
    victim["account"].save(update_fields=["app_secret"])
    both = d.template_status("777", "PAUSED")
    both["entry"] += d.envelope(("account_update", RESTRICTION), waba_id=ATTACKER_WABA)["entry"]
    assert post_delivery(both, secret=attacker.app_secret).status_code == 200
    deliveries_process()
    assert MessageTemplate.objects.get(pk=victim["template"].pk).status == "PAUSED"


@pytest.mark.parametrize("body", [b'{"entry": []}', b'{"entry": "x"}', b'{"object": 1}', b"{no"])
def test_an_account_signed_delivery_naming_no_entry_is_refused(post_delivery, attacker, body):
    assert post_delivery(body, secret=attacker.app_secret).status_code == 403
    assert not WebhookEvent.objects.exists()


def test_the_project_secret_speaks_for_every_account(post_delivery, victim, attacker):
    delivery = d.template_status("777", "PAUSED")
    delivery["entry"] += d.envelope(("account_update", RESTRICTION), waba_id=ATTACKER_WABA)["entry"]
    assert post_delivery(delivery).status_code == 200
    deliveries_process()
    assert MessageTemplate.objects.get(pk=victim["template"].pk).status == "PAUSED"
    assert WhatsAppAccount.objects.get(pk=attacker.pk).health == "restricted"


def _attackers_statuses(*items) -> dict:
    delivery = d.statuses(*items, phone_number_id=ATTACKER_PHONE)
    delivery["entry"][0]["id"] = ATTACKER_WABA
    return delivery


def test_an_own_envelope_cannot_carry_a_status_for_another_accounts_message(
    post_delivery, victim, attacker
):
    sender = CampaignSender.objects.get(campaign=victim["campaign"])
    message = MessageFactory(
        contact=ContactFactory(campaign=victim["campaign"]),
        campaign=victim["campaign"],
        phone=sender.phone,
    )
    forged = _attackers_statuses(d.status(message.wamid, "failed", error=(132015, "Paused")))
    assert post_delivery(forged, secret=attacker.app_secret).status_code == 403
    assert not WebhookEvent.objects.exists()
    assert Message.objects.get(pk=message.pk).status == "sent"


def test_an_own_envelope_cannot_reconcile_another_accounts_contact(post_delivery, victim, attacker):
    contact = ContactFactory(campaign=victim["campaign"], state=Contact.State.CLAIMED)
    forged = _attackers_statuses(d.status("wamid.NEW", "sent", callback=f"c:{contact.pk}"))
    assert post_delivery(forged, secret=attacker.app_secret).status_code == 403
    assert not WebhookEvent.objects.exists()


def test_an_account_secret_moves_its_own_messages(post_delivery, attacker):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    phone = attacker.phones.get()
    SenderFactory(campaign=campaign, phone=phone)
    message = MessageFactory(
        contact=ContactFactory(campaign=campaign), campaign=campaign, phone=phone
    )
    own = _attackers_statuses(d.status(message.wamid, "read", callback=f"c:{message.contact_id}"))
    assert post_delivery(own, secret=attacker.app_secret).status_code == 200
    deliveries_process()
    assert Message.objects.get(pk=message.pk).status == "read"


def _own_preference(wa_id: str, value: str, timestamp: int) -> dict:
    """A marketing preference in the attacker's own envelope, for its own number."""
    item = {
        "wa_id": wa_id,
        "category": "marketing_messages",
        "value": value,
        "timestamp": str(timestamp),
    }
    value_ = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1", "phone_number_id": ATTACKER_PHONE},
        "user_preferences": [item],
    }
    return d.envelope(("user_preferences", value_), waba_id=ATTACKER_WABA)


def test_an_account_secret_cannot_lift_anyones_opt_out(post_delivery, attacker):
    from campaigns.models import OptOut
    from campaigns.services.optouts import optout_record

    optout_record(phone="+971500000042", reason="keyword")
    response = post_delivery(
        _own_preference("971500000042", "resume", 4_000_000_000), secret=attacker.app_secret
    )
    assert response.status_code == 200
    deliveries_process()

    assert OptOut.objects.active().filter(phone="+971500000042").exists()
    assert "resumes signed by an account's secret" in WebhookEvent.objects.get().error


def test_meta_app_secret_resumes_as_the_person_asked(post_delivery, settings):
    from campaigns.models import OptOut
    from campaigns.services.optouts import optout_record

    optout_record(phone="+971500000042", reason="keyword")
    response = post_delivery(
        _own_preference("971500000042", "resume", 4_000_000_000), secret=settings.META_APP_SECRET
    )
    assert response.status_code == 200
    deliveries_process()

    assert not OptOut.objects.active().filter(phone="+971500000042").exists()

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns.models import Campaign, Contact, Message, OptOut
from inbox.models import Conversation, InboxMessage
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    TemplateFactory,
)
from webhooks.models import PendingStatus, WebhookEvent
from webhooks.processor import deliveries_process
from webhooks.tasks import prune_events
from webhooks.tests import deliveries as d

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(post_delivery):
    """A campaign that went through statuses, a reply, a STOP and a template pause."""
    phone = PhoneFactory(
        account=AccountFactory(waba_id=d.WABA_ID), phone_number_id=d.PHONE_NUMBER_ID
    )
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    messages = [
        MessageFactory(
            contact=ContactFactory(campaign=campaign, state=Contact.State.SENT),
            campaign=campaign,
            phone=phone,
            recipient=f"+97150000000{n}",
            wamid=f"wamid.H{n}",
        )
        for n in range(3)
    ]
    TemplateFactory(account=phone.account, meta_template_id="777")
    for delivery in (
        d.statuses(*[d.status(m.wamid, "delivered") for m in messages]),
        d.statuses(d.status("wamid.H0", "read"), d.status("wamid.H1", "read")),
        d.incoming("wamid.IN", wa_id="971500000000", text="Interested"),
        d.incoming("wamid.STOP", wa_id="971500000001", text="STOP"),
        d.template_status("777", "PAUSED", at=1_700_000_000),
    ):
        assert post_delivery(delivery).status_code == 200
    deliveries_process()
    return campaign


def _snapshot(campaign):
    campaign.refresh_from_db()
    return {
        "counters": (
            campaign.sent_count,
            campaign.delivered_count,
            campaign.read_count,
            campaign.replied_count,
        ),
        "messages": list(
            Message.objects.order_by("id").values_list("status", "read_at", "replied_at")
        ),
        "inbox": list(InboxMessage.objects.order_by("id").values_list("wamid", "campaign_message")),
        "unread": list(Conversation.objects.order_by("id").values_list("unread_count", flat=True)),
        "optouts": list(OptOut.objects.active().order_by("id").values_list("phone", flat=True)),
    }


def test_replaying_everything_twice_changes_nothing(history):
    before = _snapshot(history)
    assert before["counters"] == (3, 3, 2, 2)
    call_command("replay_webhooks", "--all", stdout=_Sink())
    call_command("replay_webhooks", "--all", stdout=_Sink())
    assert _snapshot(history) == before
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0


def test_replay_since_only_touches_later_deliveries(history):
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(days=2))
    newest = WebhookEvent.objects.order_by("-id").first()
    WebhookEvent.objects.filter(pk=newest.pk).update(received_at=timezone.now())
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    out = _Sink()
    call_command("replay_webhooks", "--since", since, stdout=out)
    assert "Replaying 1 deliveries" in out.text


def test_replay_needs_a_choice():
    with pytest.raises(CommandError):
        call_command("replay_webhooks")
    with pytest.raises(CommandError):
        call_command("replay_webhooks", "--since", "yesterday")


def test_prune_deletes_only_processed_deliveries_past_the_retention(settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    old = timezone.now() - timedelta(days=31)
    kept_unprocessed = WebhookEvent.objects.create(
        body=b"{}", signature_valid=True, received_at=old
    )
    WebhookEvent.objects.create(body=b"{}", signature_valid=True, received_at=old, processed_at=old)
    recent = WebhookEvent.objects.create(
        body=b"{}", signature_valid=True, received_at=timezone.now(), processed_at=timezone.now()
    )
    PendingStatus.objects.create(
        wamid="w",
        status="sent",
        timestamp=old,
        first_seen_at=old,
        next_attempt_at=old,
        given_up_at=old,
    )
    assert prune_events() == 1
    assert set(WebhookEvent.objects.values_list("id", flat=True)) == {
        kept_unprocessed.pk,
        recent.pk,
    }
    assert not PendingStatus.objects.exists()


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass

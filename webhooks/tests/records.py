"""Rows the webhook tests start from: campaign messages Meta has accepted and not reported on."""

from django.utils import timezone

from campaigns.models import Contact, Message
from tests.factories import TemplateFactory


def messages_sent(campaign, phone, count: int, *, wamid_prefix: str, dial: str = "+9715"):
    """`count` contacts of `campaign`, each with one sent message from `phone`, in two INSERTs."""
    template = TemplateFactory(account=phone.account)
    contacts = Contact.objects.bulk_create(
        Contact(campaign=campaign, phone=f"{dial}{n:08d}", state=Contact.State.SENT)
        for n in range(count)
    )
    now = timezone.now()
    return Message.objects.bulk_create(
        Message(
            campaign=campaign,
            contact=contact,
            phone=phone,
            template=template,
            recipient=contact.phone,
            wamid=f"{wamid_prefix}{contact.pk}",
            request_body="{}",
            sent_at=now,
        )
        for contact in contacts
    )

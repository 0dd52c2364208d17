"""factory-boy factories for every model; sensible defaults, override what a test is about."""

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from campaigns.counters import FIELDS, campaign_recount
from campaigns.models import (
    Campaign,
    CampaignSender,
    Contact,
    Message,
    OptOut,
    SenderTemplate,
)
from inbox.models import Conversation, InboxMessage
from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from webhooks.models import WebhookEvent

BODY_TWO_VARS = [
    {"type": "HEADER", "format": "TEXT", "text": "Hello {{1}}"},
    {"type": "BODY", "text": "Hi {{1}}, your code is {{2}}."},
]


TEST_PASSWORD = "s3cret-Passw0rd!"


def in_role(user, group: str):
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


def the_marketer():
    """The one marketer most tests act as (the `marketer` fixture): campaigns are theirs unless
    a test says otherwise, since marketers reach only the campaigns they own."""
    user, created = get_user_model().objects.get_or_create(username="mara")
    if created:
        user.set_password(TEST_PASSWORD)
        user.save(update_fields=["password"])
    return in_role(user, settings.MARKETER_GROUP)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def marketer(self, create, extracted, **kwargs):
        if create and extracted is not False:
            self.groups.add(Group.objects.get_or_create(name=settings.MARKETER_GROUP)[0])
        if create:
            self.save()


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhatsAppAccount

    waba_id = factory.Sequence(lambda n: f"10000000000{n:04d}")
    name = factory.Sequence(lambda n: f"Account {n}")
    access_token = "test-token"


class PhoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    account = factory.SubFactory(AccountFactory)
    phone_number_id = factory.Sequence(lambda n: f"20000000000{n:04d}")
    display_phone_number = factory.Sequence(lambda n: f"+971 50 000 {n:04d}")
    verified_name = "Demo Retail"
    quality_rating = "GREEN"
    status = "CONNECTED"
    max_mps = 80


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    account = factory.SubFactory(AccountFactory)
    meta_template_id = factory.Sequence(lambda n: f"30000000000{n:04d}")
    name = factory.Sequence(lambda n: f"template_{n}")
    language = "en_US"
    category = "MARKETING"
    approved_category = "MARKETING"
    status = MessageTemplate.Status.APPROVED
    components = factory.LazyFunction(lambda: list(BODY_TWO_VARS))


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    owner = factory.LazyFunction(the_marketer)
    status = Campaign.Status.READY


class SenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CampaignSender

    campaign = factory.SubFactory(CampaignFactory)
    phone = factory.SubFactory(PhoneFactory)


class SenderTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SenderTemplate

    sender = factory.SubFactory(SenderFactory)
    template = factory.SubFactory(TemplateFactory)
    position = factory.Sequence(lambda n: n)


class _Counted(factory.django.DjangoModelFactory):
    """Keeps the campaign's counters equal to a recount, as every real path does (a state set
    by hand here would otherwise leave counters the engine's deltas then drive negative)."""

    class Meta:
        abstract = True

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        super()._after_postgeneration(instance, create, results)
        if create:
            campaign_recount(campaign_id=instance.campaign_id)
            instance.campaign.refresh_from_db(fields=[f"{name}_count" for name in FIELDS])


class ContactFactory(_Counted):
    class Meta:
        model = Contact

    campaign = factory.SubFactory(CampaignFactory)
    phone = factory.Sequence(lambda n: f"+97150{n:07d}")
    name = factory.Faker("first_name")
    variables = factory.LazyAttribute(lambda o: {"phone": o.phone, "name": o.name})


class MessageFactory(_Counted):
    class Meta:
        model = Message

    contact = factory.SubFactory(ContactFactory)
    campaign = factory.SelfAttribute("contact.campaign")
    phone = factory.SubFactory(PhoneFactory)
    template = factory.SubFactory(TemplateFactory)
    recipient = factory.SelfAttribute("contact.phone")
    wamid = factory.Sequence(lambda n: f"wamid.TEST{n:08d}")
    request_body = "{}"
    sent_at = factory.LazyFunction(timezone.now)


class OptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OptOut

    phone = factory.Sequence(lambda n: f"+97155{n:07d}")
    reason = OptOut.Reason.MANUAL


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    phone = factory.SubFactory(PhoneFactory)
    wa_id = factory.Sequence(lambda n: f"97150{n:07d}")
    contact_name = factory.Faker("first_name")
    last_message_at = factory.LazyFunction(timezone.now)


class InboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboxMessage

    conversation = factory.SubFactory(ConversationFactory)
    wamid = factory.Sequence(lambda n: f"wamid.IN{n:08d}")
    direction = InboxMessage.Direction.INBOUND
    body = "Hello"
    timestamp = factory.LazyFunction(timezone.now)


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    body = b'{"object":"whatsapp_business_account","entry":[]}'
    signature_valid = True
    received_at = factory.LazyFunction(timezone.now)

"""What the database itself guarantees, whatever code writes to it."""

import pytest
from django.db import IntegrityError, connection, transaction

from campaigns.models import Message
from templates_app.models import WhatsAppAccount
from tests.factories import (
    AccountFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db


def _refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_a_phone_number_sends_for_a_campaign_through_one_sender_only():
    sender = SenderFactory()
    assert _refused(lambda: SenderFactory(campaign=sender.campaign, phone=sender.phone))
    # The same number may serve another campaign.
    assert not _refused(lambda: SenderFactory(phone=sender.phone))


def test_a_sender_holds_one_template_per_position_and_each_template_once():
    slot = SenderTemplateFactory(position=0)
    sender, other = slot.sender, TemplateFactory(account=slot.template.account)
    assert _refused(lambda: SenderTemplateFactory(sender=sender, template=other, position=0))
    assert _refused(
        lambda: SenderTemplateFactory(sender=sender, template=slot.template, position=1)
    )
    assert not _refused(lambda: SenderTemplateFactory(sender=sender, template=other, position=1))


def test_a_wamid_names_one_message():
    message = MessageFactory()
    assert _refused(lambda: MessageFactory(wamid=message.wamid))


def test_a_phone_number_never_paces_at_zero():
    assert _refused(lambda: PhoneFactory(max_mps=0))


def test_access_tokens_and_app_secrets_are_stored_encrypted():
    account = AccountFactory(access_token="EAAG-secret-token", app_secret="app-secret-value")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, app_secret FROM templates_app_whatsappaccount WHERE id = %s",
            [account.pk],
        )
        stored_token, stored_secret = cursor.fetchone()
    assert "EAAG-secret-token" not in stored_token
    assert "app-secret-value" not in stored_secret
    fresh = WhatsAppAccount.objects.get(pk=account.pk)
    assert (fresh.access_token, fresh.app_secret) == ("EAAG-secret-token", "app-secret-value")


def test_no_message_index_holds_a_column_that_status_updates_write():
    """Meta's statuses update every message two or three times; an index on any column they
    write would make each of those updates write every index of the table (no HOT update)."""
    written = {
        "status",
        "delivered_at",
        "read_at",
        "failed_at",
        "error_code",
        "error_title",
        "replied_at",
    }
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Message._meta.db_table)
    indexed = {
        name: set(info["columns"])
        for name, info in constraints.items()
        if info["index"] or info["unique"] or info["primary_key"]
    }
    assert indexed, "the introspection found no index at all"
    assert {name: cols & written for name, cols in indexed.items() if cols & written} == {}

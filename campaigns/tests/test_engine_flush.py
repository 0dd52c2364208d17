"""A flush that Postgres rolls back for a deadlock is written again, never dropped: a dropped
flush leaves contacts Meta accepted claimed, and the lease reaper would send them twice."""

import pytest
from django.db import DataError, connection, connections, transaction

from campaigns.engine.batch import Batch, _write, writer_thread
from campaigns.engine.claims import contacts_claim
from campaigns.models import Campaign, Contact, Message
from templates_app.services.events import AssetEvent, _template_for
from tests.factories import ContactFactory, SenderFactory, TemplateFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _writer_connection_closed():
    yield
    # The writer thread keeps its own connection, which would hold the test database open.
    writer_thread().submit(connections.close_all).result()


@pytest.fixture
def failing_counter_update():
    """Makes the campaign counter UPDATE (the flush's last step) fail the first `n` times with
    the SQLSTATE given; returns how many times it ran."""

    def install(*, sqlstate: str, n: int = 1):
        with connection.cursor() as cursor:
            cursor.execute("CREATE SEQUENCE flush_failures")
            cursor.execute(
                f"""
                CREATE FUNCTION flush_fail() RETURNS trigger AS $$
                BEGIN
                    IF nextval('flush_failures') <= {n} THEN
                        RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}';
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
            cursor.execute(
                "CREATE TRIGGER flush_fail BEFORE UPDATE ON campaigns_campaign "
                "FOR EACH ROW EXECUTE FUNCTION flush_fail()"
            )

    def runs() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM flush_failures")
            return cursor.fetchone()[0]

    install.runs = runs
    yield install
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS flush_fail ON campaigns_campaign")
        cursor.execute("DROP FUNCTION IF EXISTS flush_fail()")
        cursor.execute("DROP SEQUENCE IF EXISTS flush_failures")


def _batch_of_sent(contacts=3, *, template=None) -> tuple[Batch, Campaign]:
    sender = SenderFactory(campaign__status=Campaign.Status.RUNNING)
    template = template or TemplateFactory(account=sender.phone.account)
    campaign = sender.campaign
    ContactFactory.create_batch(contacts, campaign=campaign)
    batch = Batch(campaign_id=campaign.pk, sender_id=sender.pk, phone_id=sender.phone_id, token=5)
    claimed = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=5, limit=contacts)
    for contact in claimed:
        batch.add_sent(contact, template_id=template.pk, body='{"to":"x"}', wamid=f"w.{contact.id}")
    return batch, campaign


def test_a_deadlocked_flush_is_written_again_once(failing_counter_update):
    batch, campaign = _batch_of_sent()
    failing_counter_update(sqlstate="40P01", n=2)  # deadlock_detected, twice

    batch.flush()
    batch.settle()

    assert failing_counter_update.runs() == 3
    assert Message.objects.filter(campaign=campaign).count() == 3
    assert set(campaign.contacts.values_list("state", flat=True)) == {Contact.State.SENT}
    campaign.refresh_from_db()
    assert campaign.sent_count == 3


def test_other_database_errors_are_raised_not_retried(failing_counter_update):
    batch, campaign = _batch_of_sent()
    failing_counter_update(sqlstate="22000", n=5)  # data_exception: running it again won't help

    batch.flush()
    with pytest.raises(DataError):
        batch.settle()

    assert failing_counter_update.runs() == 1
    assert not Message.objects.filter(campaign=campaign).exists()


def test_a_template_event_in_progress_does_not_hold_up_the_engine_writing_messages():
    """The processor locks the template an event names; the engine's flush inserts messages
    whose foreign key checks that row. The two must not wait on each other (they deadlocked)."""
    template = TemplateFactory()
    batch, campaign = _batch_of_sent(template=template)
    event = AssetEvent(
        waba_id=template.account.waba_id,
        field="message_template_status_update",
        value={"event": "PAUSED", "message_template_id": template.meta_template_id},
    )
    with transaction.atomic():
        assert _template_for(event) == template  # holds the row lock until the block ends
        # The engine's writer thread, on its own connection, as in a worker.
        writer_thread().submit(_write, batch._params()).result(timeout=10)
    assert Message.objects.filter(campaign=campaign).count() == 3


def test_what_meta_answered_each_send_with_is_kept_on_its_message():
    sender = SenderFactory(campaign__status=Campaign.Status.RUNNING)
    template = TemplateFactory(account=sender.phone.account)
    campaign = sender.campaign
    ContactFactory.create_batch(2, campaign=campaign)
    batch = Batch(campaign_id=campaign.pk, sender_id=sender.pk, phone_id=sender.phone_id, token=5)
    held, accepted = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=5, limit=2)
    batch.add_sent(
        held,
        template_id=template.pk,
        body="{}",
        wamid="w.h",
        accepted="held_for_quality_assessment",
    )
    batch.add_sent(accepted, template_id=template.pk, body="{}", wamid="w.a")
    batch.flush()
    batch.settle()
    statuses = dict(Message.objects.values_list("wamid", "accepted_status"))
    assert statuses == {"w.h": "held_for_quality_assessment", "w.a": "accepted"}
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count) == (2, 0)


def test_a_lone_surrogate_in_what_meta_answered_does_not_stop_the_flush():
    """json.loads reads Meta's "\\ud800" as a lone surrogate, which is not UTF-8: the failure
    is still written (the surrogate as "?") with the sends beside it."""
    sender = SenderFactory(campaign__status=Campaign.Status.RUNNING)
    template = TemplateFactory(account=sender.phone.account)
    campaign = sender.campaign
    ContactFactory.create_batch(3, campaign=campaign)
    batch = Batch(campaign_id=campaign.pk, sender_id=sender.pk, phone_id=sender.phone_id, token=5)
    failed, *sent = contacts_claim(campaign_id=campaign.pk, sender_id=sender.pk, token=5, limit=3)
    for contact in sent:
        batch.add_sent(contact, template_id=template.pk, body="{}", wamid=f"w.{contact.id}")
    batch.add_failed(failed, code=131000, reason="Something went wrong \ud800 here")
    batch.flush()
    batch.settle()
    contact = campaign.contacts.get(pk=failed.id)
    assert contact.state == Contact.State.FAILED
    assert contact.last_error == "Something went wrong ? here"
    assert Message.objects.filter(campaign=campaign).count() == 2

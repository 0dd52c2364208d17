import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from campaigns.models import Campaign, Contact, Message
from campaigns.services.statuses import StatusUpdate, statuses_apply
from tests.factories import CampaignFactory, ContactFactory, MessageFactory

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0.replace(second=seconds)


def _message(campaign, wamid):
    contact = ContactFactory(campaign=campaign, state=Contact.State.SENT)
    return MessageFactory(contact=contact, campaign=campaign, wamid=wamid)


def _counters(campaign):
    campaign.refresh_from_db()
    return campaign.delivered_count, campaign.read_count, campaign.failed_count


@pytest.mark.django_db
def test_counters_move_by_deltas_in_each_campaign():
    first, second = CampaignFactory(), CampaignFactory()
    a, b, c = _message(first, "w.a"), _message(first, "w.b"), _message(second, "w.c")
    result = statuses_apply(
        updates=[
            StatusUpdate(a.wamid, "delivered", _at(1)),
            StatusUpdate(b.wamid, "read", _at(2)),
            StatusUpdate(c.wamid, "delivered", _at(3)),
        ]
    )
    assert (result.matched, result.moved) == (3, 3)
    assert _counters(first) == (2, 1, 0)
    assert _counters(second) == (1, 0, 0)


@pytest.mark.django_db
def test_statuses_of_one_message_in_one_batch_count_once_with_their_own_times():
    campaign = CampaignFactory()
    message = _message(campaign, "w.1")
    updates = [
        StatusUpdate("w.1", "read", _at(30)),
        StatusUpdate("w.1", "delivered", _at(20)),
        StatusUpdate("w.1", "delivered", _at(20)),
        StatusUpdate("w.1", "sent", _at(10)),
    ]
    statuses_apply(updates=updates)
    message.refresh_from_db()
    assert message.status == "read"
    assert (message.delivered_at, message.read_at) == (_at(20), _at(30))
    assert _counters(campaign) == (1, 1, 0)


@pytest.mark.django_db
def test_nothing_moves_a_message_backwards_or_out_of_failed():
    campaign = CampaignFactory()
    read = _message(campaign, "w.read")
    failed = _message(campaign, "w.failed")
    Message.objects.filter(pk=read.pk).update(status="read")
    Message.objects.filter(pk=failed.pk).update(status="failed", error_code=131026)
    result = statuses_apply(
        updates=[
            StatusUpdate("w.read", "delivered", _at(1)),
            StatusUpdate("w.read", "failed", _at(2), error_code=131000),
            StatusUpdate("w.failed", "read", _at(3)),
        ]
    )
    assert (result.matched, result.moved) == (2, 0)
    assert set(Message.objects.values_list("status", "error_code")) == {
        ("read", None),
        ("failed", 131026),
    }
    assert _counters(campaign) == (0, 0, 0)


@pytest.mark.django_db
def test_unknown_wamids_and_statuses_come_back_unmatched_or_are_ignored():
    _message(CampaignFactory(), "w.known")
    result = statuses_apply(
        updates=[
            StatusUpdate("w.unknown", "delivered", _at(1)),
            StatusUpdate("w.known", "played", _at(2)),
            StatusUpdate("", "read", _at(3)),
        ]
    )
    assert [u.wamid for u in result.unmatched] == ["w.unknown"]
    assert result.moved == 0


@pytest.mark.django_db
def test_a_failed_status_reaches_the_failure_classification():
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    message = _message(campaign, "w.opted")
    statuses_apply(
        updates=[StatusUpdate("w.opted", "failed", _at(1), error_code=131050, error_title="Stop")]
    )
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_title) == ("failed", 131050, "Stop")
    assert Contact.objects.get(pk=message.contact_id).state == Contact.State.FAILED
    assert _counters(campaign) == (0, 0, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_count_a_message_twice():
    campaign = CampaignFactory()
    wamids = [_message(campaign, f"w.race{n}").wamid for n in range(150)]
    barrier = threading.Barrier(2)

    def apply(status):
        try:
            barrier.wait()
            statuses_apply(updates=[StatusUpdate(w, status, _at(5)) for w in wamids])
        finally:
            connection.close()

    threads = [threading.Thread(target=apply, args=(s,)) for s in ("delivered", "read")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _counters(campaign) == (150, 150, 0)
    assert set(Message.objects.values_list("status", flat=True)) == {"read"}

"""The door's group commit: concurrent deliveries share commits, none is answered before it is
stored, and a failed commit fails exactly the deliveries in it."""

import threading
import time

import pytest
from django.db import DatabaseError

from webhooks import committer as committer_module
from webhooks.committer import Committer
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_deliveries_are_all_stored_in_fewer_commits(monkeypatch):
    batches = []
    real = WebhookEvent.store_many

    def counted(rows):
        batches.append(len(rows))
        real(rows)

    monkeypatch.setattr(WebhookEvent, "store_many", staticmethod(counted))
    committer = Committer()
    bodies = [f'{{"n": {n}}}'.encode() for n in range(60)]
    threads = [
        threading.Thread(target=committer.store, args=(body,), kwargs={"app_signed": True})
        for body in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = {bytes(b) for b in WebhookEvent.objects.values_list("body", flat=True)}
    assert stored == set(bodies)
    assert batches, "no delivery shared a commit"
    assert max(batches) > 1


def test_a_delivery_waits_for_the_next_one_to_share_its_commit(monkeypatch):
    # A wide window so that the second delivery lands in it however loaded the machine is.
    monkeypatch.setattr(committer_module, "GATHER_S", 1.0)
    batches = []
    monkeypatch.setattr(WebhookEvent, "store", staticmethod(lambda body, **kw: batches.append(1)))
    real = WebhookEvent.store_many
    monkeypatch.setattr(
        WebhookEvent,
        "store_many",
        staticmethod(lambda rows: (batches.append(len(rows)), real(rows))),
    )
    committer = Committer()
    first = threading.Thread(
        target=committer.store, args=(b'{"n": 1}',), kwargs={"app_signed": True}
    )
    first.start()
    time.sleep(0.05)
    committer.store(b'{"n": 2}', app_signed=True)
    first.join()
    committer.stop()

    assert batches == [2]
    assert WebhookEvent.objects.count() == 2


def test_a_failed_commit_raises_in_every_waiting_request(monkeypatch):
    def down(*args, **kwargs):
        raise DatabaseError("could not connect")

    monkeypatch.setattr(WebhookEvent, "store", staticmethod(down))
    with pytest.raises(DatabaseError):
        Committer().store(b"{}", app_signed=True)
    assert not WebhookEvent.objects.exists()


def test_a_delivery_that_waited_through_a_commit_is_not_held_for_another_gather(monkeypatch):
    # The first commit outlasts the gather window; a delivery arriving during it has waited
    # long enough by the time it ends and goes into the next commit at once.
    monkeypatch.setattr(committer_module, "GATHER_S", 1.0)
    real = WebhookEvent.store
    first_started = threading.Event()
    first_committed: list[float] = []

    def slow_first(body, **kwargs):
        first = not first_started.is_set()
        if first:
            first_started.set()
            time.sleep(1.5)
        real(body, **kwargs)
        if first:
            first_committed.append(time.monotonic())

    monkeypatch.setattr(WebhookEvent, "store", staticmethod(slow_first))
    committer = Committer()
    first = threading.Thread(
        target=committer.store, args=(b'{"n": 1}',), kwargs={"app_signed": True}
    )
    first.start()
    assert first_started.wait(10)
    committer.store(b'{"n": 2}', app_signed=True)  # arrives during the first commit
    answered = time.monotonic()
    first.join()
    committer.stop()

    assert WebhookEvent.objects.count() == 2
    # Gathering afresh once the first commit ended would have held it a whole second more.
    assert answered - first_committed[0] < 0.6

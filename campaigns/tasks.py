"""Thin Celery tasks of the sending engine: ids in, one engine call, nothing else.

The engine is imported here, not in each task: a worker's main process imports this module at
start, so its forked pool inherits the engine instead of each child loading it on its first
slice (0.1-0.3 s of CPU per child where bytecode is not cached, while the campaign waits).
"""

from celery import shared_task

from campaigns.ab.services import ab_tests_decide_due
from campaigns.engine.claims import claims_reap
from campaigns.engine.slice import sender_run_slice
from campaigns.engine.watch import campaigns_start_due, imports_requeue_lost


@shared_task(name="campaigns.tasks.send_slice", ignore_result=True)
def send_slice(*, campaign_id: int, sender_id: int) -> None:
    """Sends for one sender for one bounded slice, then queues the next slice if work remains."""
    sender_run_slice(campaign_id=campaign_id, sender_id=sender_id)


@shared_task(name="campaigns.tasks.start_due_campaigns", ignore_result=True)
def start_due_campaigns() -> None:
    """Starts scheduled campaigns whose time has come and re-queues running ones whose slice
    chain was lost (a worker killed mid-slice)."""
    campaigns_start_due()


@shared_task(name="campaigns.tasks.reap_expired_claims", ignore_result=True)
def reap_expired_claims() -> None:
    claims_reap()


@shared_task(name="campaigns.tasks.requeue_lost_imports", ignore_result=True)
def requeue_lost_imports() -> None:
    """Queues again imports whose task was lost (a worker killed, a Redis restart)."""
    imports_requeue_lost()


@shared_task(name="campaigns.tasks.decide_ab_tests", ignore_result=True)
def decide_ab_tests() -> None:
    """Notes A/B test shares that finished and picks the winners that are due; choosing twice
    is refused by a conditional UPDATE, so two runs at once decide once."""
    ab_tests_decide_due()

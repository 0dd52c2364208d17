"""Celery entry points for syncing Meta assets. Thin: ids in, one service call.

A sync is an upsert, so running one twice (a redelivery, two clicks) changes nothing.
"""

import logging
import random

from celery import shared_task

from templates_app.models import WhatsAppAccount
from templates_app.services.progress import SyncProgress
from templates_app.services.sync import account_sync, accounts_sync
from titanflow.whatsapp.errors import MetaAPIError

log = logging.getLogger(__name__)
MAX_RETRIES = 6


@shared_task(name="templates_app.tasks.sync_account", bind=True, max_retries=MAX_RETRIES)
def sync_account(self, account_id: int, sync_id: str = "") -> dict:
    account = WhatsAppAccount.objects.filter(pk=account_id).first()
    progress = SyncProgress(sync_id) if sync_id else None
    if account is None:
        return {"error": "account deleted"}
    try:
        result = account_sync(account=account, progress=progress)
    except MetaAPIError as exc:
        # Throttled (4, 80007) or transient: come back when Meta says, else back off with jitter.
        if self.request.retries >= MAX_RETRIES:
            _report(progress, "failed", f"Meta kept refusing the sync: {exc}")
            raise
        countdown = _countdown(exc, self.request.retries)
        _report(progress, "waiting", f"Meta asked TitanFlow to wait; retrying in {countdown} s.")
        raise self.retry(exc=exc, countdown=countdown) from exc
    return {"account_id": account_id, "ok": result.ok, "summary": result.summary()}


def _report(progress: SyncProgress | None, state: str, message: str) -> None:
    if progress is not None:
        progress.update(state=state, message=message)


def _countdown(exc: MetaAPIError, retries: int) -> int:
    if exc.retry_after:
        return int(exc.retry_after) + 1
    base = exc.info.retry_after_s or 5.0
    return int(min(base * 2**retries, 1800) + random.uniform(0, base))


@shared_task(name="templates_app.tasks.sync_all_accounts")
def sync_all_accounts() -> list[str]:
    accounts = list(WhatsAppAccount.objects.order_by("id"))
    # Progress entries let the pages show a scheduled sync like one started by a click.
    results = accounts_sync(
        accounts=accounts, progress_for=lambda account: SyncProgress.start(account_id=account.pk)
    )
    for result in results:
        if result.retry_after is not None:
            sync_account.apply_async(
                kwargs={"account_id": result.account_id}, countdown=int(result.retry_after) + 1
            )
        log.info("sync %s: %s", result.waba_id, result.summary())
    return [f"{result.waba_id}: {result.summary()}" for result in results]

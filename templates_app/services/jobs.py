"""Starting background syncs from pages, the API and the admin."""

from django.db import transaction

from templates_app.models import WhatsAppAccount
from templates_app.services.progress import SyncProgress, is_active
from templates_app.tasks import sync_account


def account_sync_enqueue(*, account: WhatsAppAccount) -> str:
    """Queue a sync once the current transaction commits; returns the sync id pages poll.

    A second click while a sync is queued or running gets that sync's id, not a second sync.
    """
    current = SyncProgress.latest(account_id=account.pk)
    if is_active(current):
        return current["sync_id"]
    progress = SyncProgress.start(account_id=account.pk)
    kwargs = {"account_id": account.pk, "sync_id": progress.sync_id}
    transaction.on_commit(lambda: sync_account.apply_async(kwargs=kwargs))
    return progress.sync_id

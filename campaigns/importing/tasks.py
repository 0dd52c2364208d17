from celery import shared_task

from campaigns.importing.service import import_files_prune, import_process


@shared_task(name="campaigns.import_contacts", acks_late=True)
def import_contacts(*, campaign_id: int) -> None:
    import_process(campaign_id=campaign_id)


@shared_task(name="campaigns.prune_import_files", ignore_result=True)
def prune_import_files() -> None:
    import_files_prune()

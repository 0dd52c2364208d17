from celery import shared_task

from campaigns.importing.load import import_run


@shared_task(name="campaigns.import_contacts", acks_late=True)
def import_contacts(*, campaign_id: int) -> None:
    import_run(campaign_id=campaign_id)

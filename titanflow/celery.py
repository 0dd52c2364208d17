import logging
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "titanflow.settings")

app = Celery("titanflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _periodic_jobs(sender, **kwargs):
    """Each app registers its own periodic jobs through `titanflow.schedule`."""
    from titanflow.schedule import install

    install(sender)


@worker_init.connect
def _send_worker_gives_way(sender, **kwargs):
    """A worker that only sends gives way to the webhook path (campaigns/engine/priority.py);
    one that also processes webhooks or imports keeps its priority."""
    from django.conf import settings

    from campaigns.engine.priority import cpu_give_way

    if set(sender.app.amqp.queues.consume_from) == {"send"}:
        how = cpu_give_way(settings.ENGINE_SEND_NICE)
        logging.getLogger(__name__).info("send worker CPU priority: %s", how)

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "titanflow.settings")

app = Celery("titanflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _periodic_jobs(sender, **kwargs):
    """Each app registers its own periodic jobs through `titanflow.schedule`."""
    from titanflow.schedule import install

    install(sender)

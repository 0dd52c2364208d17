from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        # Celery's autodiscovery only looks at campaigns/tasks.py; the import task lives apart.
        from campaigns.importing import tasks  # noqa: F401

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        from campaigns.engine.dispatch import on_template_status_changed

        # Celery's autodiscovery only looks at campaigns/tasks.py; the import task lives apart.
        # (it imports the import service, whose receiver deletes a deleted campaign's list).
        from campaigns.importing import tasks  # noqa: F401
        from templates_app.signals import template_status_changed

        template_status_changed.connect(
            on_template_status_changed, dispatch_uid="engine-template-status"
        )

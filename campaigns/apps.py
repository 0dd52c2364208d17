from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        from campaigns import signals
        from campaigns.engine import dispatch

        # Celery's autodiscovery only looks at campaigns/tasks.py; the import task lives apart.
        # (it imports the import service, whose receiver deletes a deleted campaign's list).
        from campaigns.importing import tasks  # noqa: F401
        from templates_app.signals import (
            phone_health_changed,
            template_quality_changed,
            template_status_changed,
        )

        phone_health_changed.connect(
            dispatch.on_engine_state_changed, dispatch_uid="engine-phone-health"
        )
        template_status_changed.connect(
            dispatch.on_template_status_changed, dispatch_uid="engine-template-status"
        )
        template_quality_changed.connect(
            dispatch.on_template_quality_changed, dispatch_uid="timeline-template-quality"
        )
        for signal, receiver in (
            (signals.campaign_wants_sending, dispatch.on_campaign_wants_sending),
            (signals.campaign_scheduled, dispatch.on_campaign_scheduled),
            (signals.sender_stopped, dispatch.on_sender_stopped),
            (signals.engine_state_changed, dispatch.on_engine_state_changed),
        ):
            signal.connect(receiver, dispatch_uid=f"engine-{receiver.__name__}")

"""The periodic jobs, in one list so an operator can read the whole schedule at once."""

from datetime import timedelta

from django.conf import settings


def install(app) -> None:
    app.conf.beat_schedule = {
        "sync-meta-assets": {
            "task": "templates_app.tasks.sync_all_accounts",
            "schedule": timedelta(minutes=settings.TEMPLATE_SYNC_INTERVAL_MINUTES),
        },
        # Every 5 s: a killed worker's senders (lock ENGINE_LOCK_SECONDS) and unsent claims
        # (lease ENGINE_LEASE_SECONDS) are back in service within seconds, not minutes.
        "start-due-campaigns": {
            "task": "campaigns.tasks.start_due_campaigns",
            "schedule": timedelta(seconds=5),
        },
        "reap-expired-leases": {
            "task": "campaigns.tasks.reap_expired_claims",
            "schedule": timedelta(seconds=5),
        },
        # A/B winners are due hours after a test share ends; a minute early or late is nothing.
        "decide-ab-tests": {
            "task": "campaigns.tasks.decide_ab_tests",
            "schedule": timedelta(seconds=settings.AB_DECIDE_INTERVAL_SECONDS),
        },
        "requeue-lost-imports": {
            "task": "campaigns.tasks.requeue_lost_imports",
            "schedule": timedelta(minutes=1),
        },
        "process-webhooks": {
            "task": "webhooks.tasks.process_pending",
            "schedule": timedelta(seconds=5),
        },
        "prune-import-files": {
            "task": "campaigns.prune_import_files",
            "schedule": timedelta(hours=6),
        },
        "prune-webhook-events": {
            "task": "webhooks.tasks.prune_events",
            "schedule": timedelta(hours=6),
        },
    }

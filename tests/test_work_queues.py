"""Every Celery task lands on a queue that the Procfile's workers (and the test workers) consume."""

from django.conf import settings

from campaigns.engine import processes
from titanflow.celery import app


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def _procfile_queues() -> set[str]:
    return {
        queue
        for args in processes.procfile_read().values()
        if processes.procfile_kind(args) == "worker"
        for queue in processes.worker_queues(args)
    }


def test_every_task_and_beat_job_goes_to_a_queue_a_procfile_worker_consumes():
    app.loader.import_default_modules()
    tasks = {name for name in app.tasks if not name.startswith("celery.")}
    tasks |= {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert len(tasks) >= 8

    unconsumed = {name: _queue(name) for name in tasks if _queue(name) not in _procfile_queues()}
    assert unconsumed == {}
    assert _procfile_queues() == set(settings.WORK_QUEUES)


def test_slices_webhook_runs_and_imports_each_have_their_own_queue():
    assert _queue("campaigns.tasks.send_slice") == "send"
    assert _queue("webhooks.tasks.process_pending") == "webhooks"
    assert _queue("campaigns.import_contacts") == "import"
    assert _queue("templates_app.tasks.sync_all_accounts") == "default"
    assert _queue("campaigns.tasks.start_due_campaigns") == "default"

"""Exactly once, never lost, through every fault (issue 11): a real campaign runs through the
Procfile's processes (the webhook door receiving the simulator's signed webhooks, a Celery
worker and the real `celery beat`, both under scripts/respawn) while the test kills Redis, restarts
PostgreSQL, stalls a worker past its lease or SIGKILLs it. Nobody touches the campaign after the
launch: it must complete by itself, every contact accepted by Meta exactly once, every accepted
send recorded, the counters equal to a recount. Each test prints (and records as a junit
property) its recovery time: from the fault's end until Meta accepts a send again."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from campaigns.engine import dispatch, processes
from campaigns.engine.processes import Process
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.services.lifecycle import campaign_launch
from tests.e2e import stack
from tests.e2e.stack import ENGINE, REAPER_EVERY_S, Db, accepted, wait_until
from titanflow.simulator.testing import SimulatorHandle, start_simulator

NUMBERS = 3
MPS = 50  # 150 sends a second in all: 2,000 contacts take about 14 s without a fault

e2e = pytest.mark.e2e
uses_test_db = pytest.mark.django_db(transaction=True)


@dataclass
class Deployment:
    env: dict
    meta: SimulatorHandle
    db: Db
    door: Process
    beat: Process
    workers: list[Process] = field(default_factory=list)

    def worker_add(self) -> Process:
        worker = stack.worker_start(env=self.env, concurrency=NUMBERS + 1)
        self.workers.append(worker)
        return worker


@pytest.fixture
def cleanup():
    with ExitStack() as stack_:
        yield stack_


@pytest.fixture
def private_redis(cleanup):
    server = stack.RedisServer()
    server.start()
    cleanup.callback(server.stop)
    return server


@pytest.fixture
def deploy(cleanup, tmp_path):
    """Starts the webhook door, simulator, beat and one worker on the given Redis and database;
    everything is stopped at the end of the test, passed or failed."""

    def start(*, redis_url: str, database_url: str) -> Deployment:
        env = processes.child_env(DATABASE_URL=database_url, REDIS_URL=redis_url, **ENGINE)
        door, door_url = processes.door_start(env=env)
        cleanup.callback(door.stop)
        meta = start_simulator(
            world=world_dict(numbers=NUMBERS, mps=MPS),
            webhook_url=door_url,
            app_secret=settings.META_APP_SECRET,
            latency_ms=20,
            stage_delay_ms=(10, 50),
            webhook_retries=8,  # Meta retries a refused delivery for hours; ~50 s here
        )
        cleanup.callback(meta.stop)
        env["WHATSAPP_GRAPH_URL"] = meta.url
        beat = stack.beat_start(env=env, schedule_dir=tmp_path)
        cleanup.callback(beat.stop)
        deployment = Deployment(env=env, meta=meta, db=Db(database_url), door=door, beat=beat)
        cleanup.callback(lambda: [worker.stop() for worker in deployment.workers])
        deployment.worker_add()
        return deployment

    return start


@pytest.fixture
def launched(marketer, monkeypatch, transactional_db):
    """A campaign staged in the test database and launched. The test process's own kick would
    go to this run's Redis, not the deployment's: the real beat queues its slices instead."""

    def launch(*, contacts: int) -> int:
        monkeypatch.setattr(dispatch, "campaign_kick", lambda **kwargs: 0)
        world = world_dict(numbers=NUMBERS, mps=MPS)
        campaign = campaign_stage(world=world, owner=marketer, contacts=contacts)
        return campaign_launch(campaign=campaign).pk

    return launch


def _quiet(meta, *, for_s: float = 0.5) -> int:
    """The accepted count once the requests in flight at a fault have landed."""
    last = [accepted(meta), time.monotonic()]

    def settled():
        now = accepted(meta)
        if now != last[0]:
            last[:] = [now, time.monotonic()]
        return time.monotonic() - last[1] >= for_s

    wait_until(settled, timeout=10, what="sending to stop")
    return last[0]


def test_respawn_restarts_its_command_and_passes_sigterm_on(tmp_path):
    runs = tmp_path / "runs"
    script = f"echo run >> {runs}; trap 'echo term >> {runs}; exit 0' TERM; sleep 0.2; exit 3"
    log = tmp_path / "respawn.log"
    with open(log, "wb") as stderr:
        wrapper = subprocess.Popen([str(stack.RESPAWN), "sh", "-c", script], stderr=stderr)
    try:
        wait_until(lambda: runs.exists() and runs.read_text().count("run") >= 2, timeout=10,
                   what="a second run")  # fmt: skip
        runs.write_text("")
        wait_until(lambda: "run" in runs.read_text(), timeout=5, what="a third run")
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=5) == 0
    finally:
        wrapper.kill()
    assert "exited with status 3" in log.read_text()


@e2e
@uses_test_db
def test_redis_killed_and_restarted_mid_campaign_loses_and_repeats_nothing(
    private_redis, deploy, launched, record_testsuite_property
):
    campaign_id = launched(contacts=2000)
    app = deploy(redis_url=private_redis.url, database_url=processes.database_url())
    wait_until(lambda: accepted(app.meta) >= 500, timeout=40, what="500 sends")

    private_redis.kill()  # its data is gone: broker queue, sender locks, pacing
    killed_at = time.monotonic()
    at_fault = _quiet(app.meta)  # no pacing without Redis: the senders stop
    time.sleep(max(0.0, 2 - (time.monotonic() - killed_at)))
    assert accepted(app.meta) == at_fault, "sent while Redis was down"
    private_redis.start()
    recovered = stack.seconds_until_sending_resumes(app.meta, since=time.monotonic())
    stack.wait_completed(app.db, campaign_id, timeout=90)

    assert accepted(app.meta) > at_fault
    stack.assert_sent_exactly_once_and_recorded(app.meta, app.db, campaign_id)
    stack.report(record_testsuite_property, "redis_recovery_s", recovered)
    print(f"worker restarts: {stack.respawns(app.workers[0])}, beat: {stack.respawns(app.beat)}")


@pytest.fixture
def private_postgres(cleanup):
    reason = stack.postgres_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL restart test: {reason}")
    root = Path(tempfile.mkdtemp(prefix="titanflow-pg-"))
    cleanup.callback(shutil.rmtree, root, ignore_errors=True)
    cluster = stack.PostgresCluster(root)
    cluster.init()
    cluster.start()
    cleanup.callback(cluster.stop)
    cluster.create_database("titanflow_pgfault")
    return cluster


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=processes.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


STAGE_AND_LAUNCH = """
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.services.lifecycle import campaign_launch
from tests.factories import the_marketer
world = world_dict(numbers={numbers}, mps={mps})
campaign = campaign_stage(world=world, owner=the_marketer(), contacts={contacts})
print("campaign", campaign_launch(campaign=campaign).pk)
"""


@e2e
def test_postgres_restarted_mid_campaign_loses_and_repeats_nothing(
    private_postgres, private_redis, deploy, record_testsuite_property
):
    url = private_postgres.url("titanflow_pgfault")
    env = processes.child_env(DATABASE_URL=url, REDIS_URL=private_redis.url)
    _manage(env, "migrate", "--noinput", "-v", "0")
    app = deploy(redis_url=private_redis.url, database_url=url)
    code = STAGE_AND_LAUNCH.format(numbers=NUMBERS, mps=MPS, contacts=2000)
    campaign_id = int(_manage(env, "shell", "-c", code).split()[-1])
    wait_until(lambda: accepted(app.meta) >= 500, timeout=40, what="500 sends")

    private_postgres.stop("immediate")  # every connection dies mid-statement
    at_fault = _quiet(app.meta)
    time.sleep(3)
    private_postgres.start()
    recovered = stack.seconds_until_sending_resumes(app.meta, since=time.monotonic())
    stack.wait_completed(app.db, campaign_id, timeout=90)

    assert accepted(app.meta) > at_fault
    stack.assert_sent_exactly_once_and_recorded(app.meta, app.db, campaign_id)
    stack.report(record_testsuite_property, "postgres_recovery_s", recovered)
    print(f"worker restarts: {stack.respawns(app.workers[0])}, beat: {stack.respawns(app.beat)}")


@e2e
@uses_test_db
def test_a_worker_stalled_past_its_lease_neither_sends_again_nor_overwrites(
    private_redis, deploy, launched, record_testsuite_property
):
    campaign_id = launched(contacts=1800)
    app = deploy(redis_url=private_redis.url, database_url=processes.database_url())
    wait_until(lambda: accepted(app.meta) >= 400, timeout=40, what="400 sends")

    [stalled] = app.workers
    os.killpg(stalled.pid, signal.SIGSTOP)  # the worker and its pool, mid-slice
    stalled_at = time.monotonic()
    try:
        _quiet(app.meta)
        held = app.db.one(
            "SELECT count(*), count(*) FILTER (WHERE sending) FROM campaigns_contact "
            "WHERE campaign_id = %s AND state = 'claimed' AND claimed_by_id IS NOT NULL",
            [campaign_id],
        )
        print(f"\nthe stalled slices hold {held[0]} claims, {held[1]} of them armed")
        app.worker_add()
        taken_over = stack.seconds_until_sending_resumes(app.meta, since=stalled_at)
        past_lease = ENGINE["ENGINE_LEASE_SECONDS"] + REAPER_EVERY_S + 2
        wait_until(lambda: time.monotonic() - stalled_at >= past_lease, timeout=30,
                   what="the stalled slice's lease to be reaped")  # fmt: skip
    finally:
        os.killpg(stalled.pid, signal.SIGCONT)
    stack.wait_completed(app.db, campaign_id, timeout=90)

    assert held[0] > 0, "the worker stalled between slices: nothing was at stake"
    stack.assert_sent_exactly_once_and_recorded(app.meta, app.db, campaign_id)
    stack.report(record_testsuite_property, "stall_takeover_s", taken_over)
    assert "lease could not be renewed" in stalled.output() or "lost its lock" in stalled.output()


@e2e
@uses_test_db
def test_a_worker_sigkilled_mid_campaign_is_back_sending_within_seconds(
    private_redis, deploy, launched, record_testsuite_property
):
    campaign_id = launched(contacts=1500)
    app = deploy(redis_url=private_redis.url, database_url=processes.database_url())
    wait_until(lambda: accepted(app.meta) >= 400, timeout=40, what="400 sends")

    [worker] = app.workers
    stack.signal_pids(stack.celery_pids(worker), signal.SIGKILL)  # respawn starts it again
    killed_at = time.monotonic()
    _quiet(app.meta, for_s=0.3)
    recovered = stack.seconds_until_sending_resumes(app.meta, since=killed_at)
    stack.wait_completed(app.db, campaign_id, timeout=90)

    stack.assert_sent_exactly_once_and_recorded(app.meta, app.db, campaign_id)
    stack.report(record_testsuite_property, "worker_kill_recovery_s", recovered)
    lock, beat = ENGINE["ENGINE_LOCK_SECONDS"], REAPER_EVERY_S
    assert recovered < lock + beat + 7, f"senders back only {recovered:.1f} s after the kill"

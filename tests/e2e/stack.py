"""The fault tests' deployment: private Redis and PostgreSQL servers the test can kill, the web,
worker and beat processes as the Procfile runs them (workers and beat under scripts/respawn),
and the checks every fault test ends with, read straight from the database with SQL so they
work against the test database and a private cluster alike."""

import base64
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from django.conf import settings

from campaigns.counters import _TRUTH_SQL, FIELDS
from campaigns.engine import processes
from campaigns.engine.processes import Process, free_port

RESPAWN = processes.BASE_DIR / "scripts" / "respawn"
# Short engine timings (the brief's): a fault is over and recovered from within seconds.
ENGINE = {
    "ENGINE_SLICE_SECONDS": 1,
    "ENGINE_LEASE_SECONDS": 6,
    "ENGINE_LOCK_SECONDS": 3,
    "ENGINE_AMBIGUOUS_GRACE_SECONDS": 20,
    "ENGINE_READ_TIMEOUT_SECONDS": 3,
    "ENGINE_FLUSH_SECONDS": 0.3,
    "ENGINE_DB_RETRY_SECONDS": 60,
}
REAPER_EVERY_S = 5  # titanflow/schedule.py


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# -- servers the test owns ----------------------------------------------------------------------


class RedisServer:
    """A redis-server without persistence: killing it loses the broker queue, locks and pacing."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen | None = None
        self.log = Path(tempfile.gettempdir()) / f"titanflow-redis-{self.port}.log"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        args += ["--bind", "127.0.0.1"]
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), timeout=10, what="redis-server to answer")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def postgres_unavailable() -> str | None:
    """Why a private cluster cannot be run here, or None."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() != 0:
        return "a private cluster runs as the postgres user: this needs root (runuser)"
    if shutil.which("runuser") is None:
        return "runuser is not installed"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user to run the cluster as"
    return None


class PostgresCluster:
    """A private PostgreSQL cluster in a temp dir, run as the postgres user, trust on loopback."""

    def __init__(self, root: Path):
        self.bin = postgres_bin()
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sock"
        self.logfile = root / "postgres.log"
        self.port = free_port()

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def init(self) -> None:
        self.sockets.mkdir(parents=True)
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.sockets, "postgres", "postgres")
        initdb = str(self.bin / "initdb")
        self._as_postgres(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N")

    def start(self) -> None:
        # fsync off is safe here: an immediate stop kills the server, not the machine, so what
        # reached the kernel survives. (synchronous_commit off would lose acknowledged commits.)
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = str(self.bin / "pg_ctl")
        self._as_postgres(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.logfile),
                          "-w", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        pg_ctl = str(self.bin / "pg_ctl")
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


# -- the application's processes ----------------------------------------------------------------


def respawned(args: list[str], *, env: dict, name: str) -> Process:
    """`args` under scripts/respawn, as the Procfile runs the worker and the beat."""
    return Process([str(RESPAWN), *args], env=env, name=name)


def worker_start(*, env: dict, concurrency: int, name: str = "fault-worker") -> Process:
    args = [sys.executable, "-m", "celery", "-A", "titanflow", "worker", "--loglevel=INFO"]
    args += [f"--concurrency={concurrency}", "--pool=prefork", "--without-gossip"]
    args += ["--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.urandom(4).hex()}@%h"]
    args += ["-Q", ",".join(settings.WORK_QUEUES)]  # every queue the Procfile's workers read
    process = respawned(args, env=env, name=name)
    process.wait_for(r"ready\.", timeout=60)
    return process


def beat_start(*, env: dict, schedule_dir: Path) -> Process:
    """The real `celery beat`, its schedule file in `schedule_dir` (never the work tree)."""
    args = [sys.executable, "-m", "celery", "-A", "titanflow", "beat", "--loglevel=INFO"]
    args += ["--schedule", str(schedule_dir / "celerybeat-schedule")]
    process = respawned(args, env=env, name="fault-beat")
    process.wait_for(r"beat: Starting", timeout=60)
    return process


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children = [int(child) for child in task.read_text().split()]
                found += children
                todo += children
    return found


def celery_pids(process: Process) -> list[int]:
    """The Celery worker under a respawn wrapper: its main process and its pool."""
    return descendants(process.pid)


def signal_pids(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def respawns(process: Process) -> int:
    return process.output().count("respawn: ")


# -- measuring and checking ---------------------------------------------------------------------


def accepted(meta) -> int:
    return meta.stats()["accepted_total"]


def seconds_until_sending_resumes(meta, *, since: float, timeout: float = 60) -> float:
    """From `since` (the fault's end, time.monotonic()) until Meta accepts a new send."""
    before = accepted(meta)
    wait_until(lambda: accepted(meta) > before, timeout=timeout, what="sending to resume")
    return time.monotonic() - since


def report(record_testsuite_property, name: str, seconds: float) -> None:
    record_testsuite_property(name, f"{seconds:.2f}")
    print(f"\n{name}: {seconds:.2f} s")


@dataclass
class Db:
    """SQL on the database the processes use (the test database or a private cluster)."""

    url: str

    def one(self, sql: str, params=None):
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchone()

    def all(self, sql: str, params=None) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def status(self, campaign_id: int) -> str | None:
        try:
            row = self.one("SELECT status FROM campaigns_campaign WHERE id = %s", [campaign_id])
        except psycopg.OperationalError:
            return None  # the database is restarting
        return row[0]

    def truth(self, campaign_id: int) -> dict[str, int]:
        return dict(zip(FIELDS, self.one(_TRUTH_SQL, {"c": campaign_id}), strict=True))

    def counters(self, campaign_id: int) -> dict[str, int]:
        columns = ", ".join(f"{name}_count" for name in FIELDS)
        row = self.one(f"SELECT {columns} FROM campaigns_campaign WHERE id = %s", [campaign_id])
        return dict(zip(FIELDS, row, strict=True))

    def webhooks_left(self) -> tuple[int, int]:
        """(deliveries not processed yet, statuses not applied to a message)."""
        events = self.one("SELECT count(*) FROM webhooks_webhookevent WHERE processed_at IS NULL")
        statuses = self.one("SELECT count(*) FROM webhooks_pendingstatus")
        return events[0], statuses[0]


def wait_completed(db: Db, campaign_id: int, *, timeout: float) -> None:
    wait_until(
        lambda: db.status(campaign_id) == "completed",
        timeout=timeout,
        what=f"campaign {campaign_id} to complete by itself (now {db.status(campaign_id)!r})",
        every=0.25,
    )


def wait_webhooks_drained(meta, db: Db, *, timeout: float = 45) -> None:
    def drained():
        hooks = meta.stats()["webhooks"]
        return hooks["pending"] == 0 and db.webhooks_left() == (0, 0)

    with contextlib.suppress(AssertionError):
        wait_until(drained, timeout=timeout, what="the webhooks to be applied", every=0.5)


def wamid_recipient(wamid: str) -> str:
    """The simulator's wamids are base64 of its run prefix (8), a serial (12), the recipient."""
    return base64.b64decode(wamid.removeprefix("wamid.")).decode()[20:]


def assert_sent_exactly_once_and_recorded(meta, db: Db, campaign_id: int) -> None:
    """Every contact accepted by Meta exactly once, each accepted send recorded as a Message with
    the wamid Meta gave it, counters equal to a recount, every status webhook applied."""
    stats = meta.stats()
    by_recipient = stats["accepted_by_recipient"]
    contacts = db.all(
        "SELECT phone, state, attempts, last_error FROM campaigns_contact WHERE campaign_id = %s",
        [campaign_id],
    )
    phones = {phone.lstrip("+") for phone, *_ in contacts}
    missing = [row for row in contacts if row[0].lstrip("+") not in by_recipient]
    assert not missing, f"{len(missing)} contacts never sent, e.g. {missing[:5]}"
    assert set(by_recipient) == phones, "Meta got a message for someone not in the list"
    twice = {phone: n for phone, n in by_recipient.items() if n != 1}
    assert not twice, f"{len(twice)} contacts sent more than once: {dict(list(twice.items())[:5])}"

    messages = db.all(
        "SELECT recipient, wamid FROM campaigns_message WHERE campaign_id = %s", [campaign_id]
    )
    assert len(messages) == stats["accepted_total"], (
        f"{stats['accepted_total'] - len(messages)} sends Meta accepted have no Message row"
    )
    wrong = [(r, w) for r, w in messages if wamid_recipient(w) != r.lstrip("+")]
    assert not wrong, f"Messages whose wamid Meta gave another recipient: {wrong[:5]}"
    assert {r.lstrip("+") for r, _ in messages} == phones

    # Status webhooks move delivered and read while they arrive: recount once they are in.
    wait_webhooks_drained(meta, db)
    assert meta.stats()["webhooks"]["dropped"] == 0, "the web process refused status webhooks"
    events, statuses = db.webhooks_left()
    assert (events, statuses) == (0, 0), (
        f"{events} webhook deliveries unprocessed, {statuses} statuses never applied"
    )
    truth = db.truth(campaign_id)
    assert truth["sent"] == len(phones) and truth["failed"] == truth["skipped"] == 0, truth
    assert truth["delivered"] == truth["read"] == len(phones), f"statuses not applied: {truth}"
    counters = db.counters(campaign_id)
    assert counters == truth, f"the counters {counters} differ from a recount {truth}"

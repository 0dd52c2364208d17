"""The send worker gives way to the webhook path (campaigns/engine/priority.py), as started by
a process manager: each worker in a session of its own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from campaigns.engine import processes


def _nice(pid: int) -> int:
    # /proc/<pid>/stat: the 19th field is the nice value (after the command in parentheses).
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _autogroup(pid: int) -> str:
    path = Path(f"/proc/{pid}/autogroup")
    return path.read_text() if path.exists() else ""


@pytest.mark.django_db(transaction=True)
def test_only_a_worker_that_just_sends_is_lowered_with_its_pool():
    env = processes.child_env(ENGINE_SEND_NICE=15)
    send = processes.worker_start(concurrency=2, env=env, name="send", queues=["send"])
    both = processes.worker_start(concurrency=1, env=env, name="all")
    try:
        lowered = [send.pid, *processes._children(send.pid)]
        assert len(lowered) == 3  # the worker and its pool of two
        assert {_nice(pid) for pid in lowered} == {15}
        if _autogroup(send.pid):  # a kernel with autogroups: the session's group too
            assert _autogroup(send.pid).rstrip().endswith("nice 15")
        # A worker that also applies webhooks must not be slowed with them.
        own = os.nice(0)
        assert own < 15, "the tests themselves run at a low priority already"
        assert {_nice(pid) for pid in [both.pid, *processes._children(both.pid)]} == {own}
        assert "send worker CPU priority: nice 15" in send.output()
    finally:
        send.stop()
        both.stop()


GIVE_WAY = (
    "import os; from campaigns.engine.priority import cpu_give_way; "
    "print(cpu_give_way(7)); print(os.nice(0)); "
    "print(open('/proc/self/autogroup').read().strip())"
)


def _give_way_in(shell_line: str) -> list[str]:
    done = subprocess.run(
        ["setsid", "sh", "-c", shell_line],
        cwd=processes.BASE_DIR,
        env={**os.environ, "GIVE_WAY": GIVE_WAY},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroups here")
def test_the_session_is_lowered_only_when_nothing_else_shares_it():
    # Two launchers deep, as honcho runs a Procfile line: sh -c, scripts/respawn, the worker.
    how, nice, group = _give_way_in(f"sh -c '{sys.executable} -c \"$GIVE_WAY\"; true'; true")
    assert (nice, group.endswith("nice 7")) == ("7", True), how
    # A session shared with another program (a terminal's jobs): the process alone.
    how, nice, group = _give_way_in(f'sleep 5 & {sys.executable} -c "$GIVE_WAY"; kill $!')
    assert (how, nice, group.endswith("nice 0")) == ("nice 7", "7", True)

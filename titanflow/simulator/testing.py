"""Run the Meta simulator inside a test process: a background thread with its own event loop.

    with start_simulator(webhook_url=receiver_url, app_secret="s3cret") as meta:
        requests.post(f"{meta.url}/v23.0/200000000000001/messages", ...)
        assert meta.stats()["accepted_total"] == 1

The handle talks to the simulator over loopback HTTP (its /_sim/ API), exactly as the benchmark
and a separate `manage.py meta_simulator` process would be talked to.
"""

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import requests

from titanflow.simulator.app import Server
from titanflow.simulator.core import Simulator
from titanflow.simulator.loops import loop_new
from titanflow.simulator.options import STATUS_STAGES, SimulatorOptions
from titanflow.simulator.scenario import parse_scenario
from titanflow.simulator.world import World, default_world

_HTTP_TIMEOUT = (5, 30)
T = TypeVar("T")


class SimulatorControlError(RuntimeError):
    """The simulator refused a control call; the message is its answer."""


def start_simulator(
    *,
    world: World | dict | None = None,
    scenario=None,
    webhook_url: str | None = None,
    app_secret: str | None = None,
    latency_ms: float = 0,
    statuses=STATUS_STAGES,
    statuses_per_delivery: int = 1,
    **opts,
) -> "SimulatorHandle":
    """Start a simulator on 127.0.0.1 with a free port; see scenario.py for every option."""
    options = SimulatorOptions(
        webhook_url=webhook_url,
        app_secret=app_secret,
        latency_ms=latency_ms,
        statuses=statuses,
        statuses_per_delivery=statuses_per_delivery,
        **opts,
    )
    if world is None:
        world = default_world()
    elif isinstance(world, dict):
        world = World.from_dict(world)
    handle = SimulatorHandle(Simulator(world=world, scenario=scenario, options=options))
    handle.start()
    return handle


class LoopThread:
    """An asyncio event loop running in a daemon thread, driven from synchronous code."""

    def __init__(self, name: str):
        self._loop = loop_new()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        """Start `coroutine` on the loop; its future, to wait on later."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def close(self) -> None:
        self.run(_cancel_leftovers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class SimulatorHandle:
    def __init__(self, simulator: Simulator):
        self._server = Server(simulator)
        self._thread: LoopThread | None = None
        self._http = requests.Session()
        self.url = ""

    def start(self) -> None:
        self._thread = LoopThread("meta-simulator")
        try:
            self.url = self._thread.run(self._server.start())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        try:
            thread.run(self._server.stop())
        finally:
            thread.close()
            self._http.close()

    def __enter__(self) -> "SimulatorHandle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _call(self, method: str, path: str, **kwargs):
        response = self._http.request(
            method, self.url + path, timeout=_HTTP_TIMEOUT, allow_redirects=False, **kwargs
        )
        if response.status_code >= 400:
            raise SimulatorControlError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def stats(self) -> dict:
        return self._call("GET", "/_sim/stats")

    def messages(self, to: str | None = None) -> list[dict]:
        """Accepted request bodies, in order, for one recipient (any format) or for everyone."""
        return self._call("GET", "/_sim/messages", params={"to": to} if to else None)

    def set_scenario(self, scenario) -> None:
        parse_scenario(scenario)  # raises ScenarioError here, in the caller's thread
        body = scenario if isinstance(scenario, str | bytes) else None
        self._call("POST", "/_sim/scenario", data=body, json=None if body else scenario)

    def reset(self) -> None:
        self._call("POST", "/_sim/reset")

    def world(self) -> dict:
        return self._call("GET", "/_sim/world")

    def set_world(self, world: dict, *, replace: bool = False) -> dict:
        return self._call("POST", "/_sim/world", json={**world, "replace": replace})

    def set_phone(self, phone_number_id: str, **settings) -> dict:
        body = {"phone_number_id": phone_number_id, **settings}
        return self._call("POST", "/_sim/phone", json=body)

    def template_event(self, *, event: str, **target) -> dict:
        """`target`: template_id, or waba_id + template_name (+ language); optional reason."""
        return self._call("POST", "/_sim/template_event", json={"event": event, **target})

    def phone_event(self, *, phone_number_id: str, event: str = "THROUGHPUT_UPGRADE", **fields):
        body = {"phone_number_id": phone_number_id, "event": event, **fields}
        return self._call("POST", "/_sim/phone_event", json=body)

    def capability_event(self, *, waba_id: str, messaging_limit: str) -> dict:
        body = {"waba_id": waba_id, "messaging_limit": messaging_limit}
        return self._call("POST", "/_sim/capability_event", json=body)

    def account_event(self, *, waba_id: str, event: str, **details) -> dict:
        body = {"waba_id": waba_id, "event": event, **details}
        return self._call("POST", "/_sim/account_event", json=body)

    def inbound(
        self,
        *,
        phone_number_id: str,
        from_: str,
        text: str,
        name: str | None = None,
        context_id: str | None = None,
        type: str = "text",
    ) -> dict:
        """Post an incoming message webhook; returns {"wamid", "webhook_status"}."""
        body = {"phone_number_id": phone_number_id, "from": from_, "text": text, "type": type}
        body.update({k: v for k, v in (("name", name), ("context_id", context_id)) if v})
        return self._call("POST", "/_sim/inbound", json=body)

    def user_preferences(self, *, phone_number_id: str, wa_id: str, value: str = "stop") -> dict:
        body = {"phone_number_id": phone_number_id, "wa_id": wa_id, "value": value}
        return self._call("POST", "/_sim/user_preferences", json=body)

    def wait_for_webhooks(self, timeout: float = 10.0) -> dict:
        """Block until no status webhook is pending; returns the stats, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["webhooks"]["pending"] == 0:
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stats['webhooks']['pending']} webhooks still pending")
            time.sleep(0.02)


async def _cancel_leftovers() -> None:
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()

import json
import threading
import time

import pytest
from aiohttp import web

from titanflow.simulator.testing import LoopThread
from titanflow.whatsapp.signature import verify_signature

APP_SECRET = "simulator-test-secret"


class Receiver:
    """A local aiohttp endpoint standing in for TitanFlow's webhook view; it keeps every POST."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []  # (headers, raw body), in arrival order
        self.failures_left = 0  # answer 500 to this many posts before accepting
        self._lock = threading.Lock()
        self._thread = LoopThread("webhook-receiver")
        self._runner: web.AppRunner | None = None
        self.url = self._thread.run(self._start())

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/webhooks/whatsapp/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhooks/whatsapp/"

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        with self._lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return web.Response(status=500)
            self.deliveries.append((dict(request.headers), raw))
        return web.Response(text="ok")

    def bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(raw) for _, raw in self.deliveries]

    def statuses(self) -> list[dict]:
        return [
            status
            for body in self.bodies()
            for entry in body["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]

    def all_signed(self, secret: str = APP_SECRET) -> bool:
        with self._lock:
            return bool(self.deliveries) and all(
                verify_signature(secret, raw, headers.get("X-Hub-Signature-256"))
                for headers, raw in self.deliveries
            )

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The first `count` deliveries once they have arrived (fails the test otherwise)."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(self.deliveries)} of {count} webhook deliveries arrived")
            time.sleep(0.01)
        return self.bodies()

    def close(self) -> None:
        self._thread.run(self._runner.cleanup())
        self._thread.close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()

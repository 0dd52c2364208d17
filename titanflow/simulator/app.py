"""The aiohttp application and a small server wrapper shared by the command and the tests."""

from aiohttp import web

from titanflow.simulator import control, graph
from titanflow.simulator.core import Simulator

# Meta accepts bodies far larger than TitanFlow sends; 1 MiB is aiohttp's default, kept explicit.
MAX_BODY = 1024 * 1024


def create_app(simulator: Simulator) -> web.Application:
    app = web.Application(
        middlewares=[control.control_errors, graph.graph_errors], client_max_size=MAX_BODY
    )
    app[graph.SIMULATOR] = simulator
    app.add_routes(control.routes)
    app.add_routes(graph.routes)
    app.on_startup.append(_start_webhooks)
    app.on_cleanup.append(_close_webhooks)
    return app


async def _start_webhooks(app: web.Application) -> None:
    await app[graph.SIMULATOR].webhooks.start()


async def _close_webhooks(app: web.Application) -> None:
    await app[graph.SIMULATOR].webhooks.close()


class Server:
    """A running simulator on one host and port (port 0 picks a free one)."""

    def __init__(self, simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0):
        self.simulator = simulator
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        # A short shutdown grace: held `timeout` answers must not keep a stop waiting for 60 s.
        self._runner = web.AppRunner(
            create_app(self.simulator), access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

"""`manage.py meta_simulator`: serve the Meta simulator until interrupted.

The scenario format and every option are documented in `titanflow/simulator/scenario.py`.
"""

import asyncio
import json
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from titanflow.simulator.app import Server
from titanflow.simulator.core import Simulator
from titanflow.simulator.options import SimulatorOptions
from titanflow.simulator.scenario import ScenarioError, load_scenario
from titanflow.simulator.world import World, default_world


class Command(BaseCommand):
    help = "Serve a local stand-in for Meta's WhatsApp Cloud API (the demo, tests, benchmark)."
    requires_system_checks = []  # a test double: it needs neither the database nor the apps

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
        parser.add_argument("--world", help="world JSON file (default: the demo world)")
        parser.add_argument("--scenario", help="scenario JSON file of injected failures")
        parser.add_argument("--webhook-url", help="where to post signed webhooks (none: off)")
        parser.add_argument("--app-secret", help="signs webhooks (default META_APP_SECRET)")
        parser.add_argument(
            "--latency-ms", type=float, default=0, help="delay before each Graph API answer"
        )
        parser.add_argument(
            "--latency-jitter-ms", type=float, default=0, help="random extra delay, up to this"
        )
        parser.add_argument(
            "--statuses",
            default="sent,delivered,read",
            help="status webhooks sent for each accepted message, in order",
        )
        parser.add_argument(
            "--statuses-per-delivery",
            type=int,
            default=1,
            help="up to this many statuses in one webhook delivery",
        )
        parser.add_argument(
            "--duplicate-rate",
            type=float,
            default=0.0,
            help="share of webhook deliveries sent twice (0 to 1), as Meta sometimes does",
        )
        parser.add_argument(
            "--shuffle", action="store_true", help="each message's statuses in a random order"
        )
        parser.add_argument(
            "--click-rate", type=float, default=0.0, help="share of read messages whose link opens"
        )
        parser.add_argument(
            "--template-click-rates",
            default="",
            help="NAME=X,NAME=Y: click rates per template name, over --click-rate (A/B demos)",
        )
        parser.add_argument("--stage-delay-ms", default="50,200", help="LOW,HIGH per stage")
        parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
        parser.add_argument(
            "--no-record-bodies",
            action="store_true",
            help="keep counters only, not every request body (long benchmark runs)",
        )

    def handle(self, *args, **opts):
        world, scenario = _world(opts["world"]), _scenario(opts["scenario"])
        simulator = Simulator(world=world, scenario=scenario, options=_options(opts))
        asyncio.run(self._serve(Server(simulator, host=opts["host"], port=opts["port"])))

    async def _serve(self, server: Server) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            url = await server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {server.host}:{server.port}: {exc}") from None
        world = server.simulator.world
        self.stdout.write(
            f"Meta simulator listening on {url} ({len(world.accounts)} accounts, "
            f"{len(world.phones)} phones, {len(world.templates)} templates)"
        )
        self.stdout.flush()
        await stopping.wait()
        await server.stop()


def _world(path: str | None) -> World:
    if not path:
        return default_world()
    try:
        with open(path, encoding="utf-8") as file:
            return World.from_dict(json.load(file))
    except (OSError, ValueError) as exc:  # WorldError and JSONDecodeError are ValueErrors
        raise CommandError(f"world {path}: {exc}") from None


def _scenario(path: str | None):
    if not path:
        return None
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise CommandError(f"scenario {path}: {exc}") from None


def _rates(text: str) -> dict[str, float]:
    rates = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rate = item.partition("=")
        try:
            rates[name.strip()] = float(rate)
        except ValueError:
            raise CommandError(f"--template-click-rates: {item!r} is not NAME=RATE") from None
    return rates


def _options(opts: dict) -> SimulatorOptions:
    app_secret = opts["app_secret"] or settings.META_APP_SECRET
    try:
        return SimulatorOptions(
            webhook_url=opts["webhook_url"],
            app_secret=app_secret,
            latency_ms=opts["latency_ms"],
            latency_jitter_ms=opts["latency_jitter_ms"],
            statuses=tuple(s.strip() for s in opts["statuses"].split(",") if s.strip()),
            statuses_per_delivery=opts["statuses_per_delivery"],
            duplicate_rate=opts["duplicate_rate"],
            click_rate=opts["click_rate"],
            template_click_rates=_rates(opts["template_click_rates"]),
            shuffle=opts["shuffle"],
            stage_delay_ms=_pair(opts["stage_delay_ms"]),
            seed=opts["seed"],
            record_bodies=not opts["no_record_bodies"],
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _pair(text: str) -> tuple[float, float]:
    parts = [float(part) for part in text.split(",")]
    return (parts[0], parts[-1])

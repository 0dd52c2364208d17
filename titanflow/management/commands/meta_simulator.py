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
from titanflow.simulator.loops import loop_run
from titanflow.simulator.options import SimulatorOptions
from titanflow.simulator.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from titanflow.simulator.world import World, default_world


class Command(BaseCommand):
    help = (
        "Serve a local stand-in for Meta's WhatsApp Cloud API (the demo, tests, benchmark). "
        "Meta's 2025-2026 rules, each on demand: --portfolio-limits answers templates to new "
        "recipients over the portfolio's tier (unique recipients per rolling window) with a "
        "failed 131064 webhook; --marketing-cap-share fails that share of recipients with "
        "131049; --held-template answers a template's sends held_for_quality_assessment; every "
        "status webhook carries a PMP pricing block. Quality and tier change on demand over "
        "HTTP: POST /_sim/phone_event {phone_number_id, event: FLAGGED|UNFLAGGED} "
        "(phone_number_quality_update; FLAGGED makes the number RED), POST "
        "/_sim/capability_event {waba_id, messaging_limit: TIER_250|TIER_2K|...} "
        "(business_capability_update). Scenario rules and every option: "
        "titanflow/simulator/scenario.py."
    )
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
        parser.add_argument(
            "--portfolio-limits",
            action="store_true",
            help="enforce each portfolio's messaging limit (unique template recipients per "
            "window); sends over it fail by webhook with 131064",
        )
        parser.add_argument(
            "--portfolio-window-s",
            type=float,
            default=86400.0,
            help="the rolling window of --portfolio-limits, in seconds (Meta: 24 h)",
        )
        parser.add_argument(
            "--marketing-cap-share",
            type=float,
            default=0.0,
            help="share of recipients (the same ones every send) whose template sends "
            "fail by webhook with 131049, Meta's per-user marketing cap (0 to 1)",
        )
        parser.add_argument(
            "--held-template",
            action="append",
            default=[],
            metavar="NAME",
            help="answer this template's sends held_for_quality_assessment (template pacing); "
            "repeatable",
        )
        parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
        parser.add_argument(
            "--no-record-bodies",
            action="store_true",
            help="keep counters only, not every request body (long benchmark runs)",
        )

    def handle(self, *args, **opts):
        world, scenario = _world(opts["world"]), _scenario(opts["scenario"], _flag_rules(opts))
        simulator = Simulator(world=world, scenario=scenario, options=_options(opts))
        loop_run(self._serve(Server(simulator, host=opts["host"], port=opts["port"])))

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


def _flag_rules(opts: dict) -> list[dict]:
    rules = [
        {"message_status": "held_for_quality_assessment", "template": name}
        for name in opts["held_template"]
    ]
    if opts["marketing_cap_share"]:
        share = opts["marketing_cap_share"]
        rules.append({"error_code": 131049, "share": share, "delivery": "webhook"})
    return rules


def _scenario(path: str | None, extra: list[dict]):
    try:
        rules = load_scenario(path).rules if path else []
        added = parse_scenario({"rules": extra}).rules
    except ScenarioError as exc:
        raise CommandError(f"scenario {path or '(options)'}: {exc}") from None
    for index, rule in enumerate(added, start=len(rules)):
        rule.index = index
    return Scenario(rules + added) if rules or added else None


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
            portfolio_limits=opts["portfolio_limits"],
            portfolio_window_s=opts["portfolio_window_s"],
            seed=opts["seed"],
            record_bodies=not opts["no_record_bodies"],
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _pair(text: str) -> tuple[float, float]:
    parts = [float(part) for part in text.split(",")]
    return (parts[0], parts[-1])

"""How a simulator run behaves; every option is described in `titanflow.simulator.scenario`."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

STATUS_STAGES = ("sent", "delivered", "read")


@dataclass
class SimulatorOptions:
    webhook_url: str | None = None
    app_secret: str | None = None
    latency_ms: float = 0
    latency_jitter_ms: float = 0
    statuses: tuple[str, ...] = STATUS_STAGES
    statuses_per_delivery: int = 1
    batch_linger_ms: float = 50
    duplicate_rate: float = 0.0
    shuffle: bool = False
    stage_delay_ms: tuple[float, float] = (50, 200)
    webhook_concurrency: int = 16
    webhook_timeout_s: float = 10
    webhook_retries: int = 2
    timeout_hold_s: float = 30
    record_bodies: bool = True
    click_rate: float = 0.0
    # Per template name, overriding click_rate: A/B demos and tests get a clear winner.
    template_click_rates: dict[str, float] = field(default_factory=dict)
    portfolio_limits: bool = False
    portfolio_window_s: float = 86400.0
    seed: int | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self):
        self.statuses = tuple(self.statuses)
        self.stage_delay_ms = tuple(self.stage_delay_ms)
        unknown = [s for s in self.statuses if s not in STATUS_STAGES]
        _require(not unknown, f"statuses: unknown {unknown}; choose from {STATUS_STAGES}")
        _require(
            bool(self.app_secret) or not self.webhook_url,
            "webhook_url needs app_secret: Meta signs every delivery",
        )
        _require(
            not self.webhook_url or self.webhook_url.startswith("http://"),
            "webhook_url must be an http:// address (the simulator posts over plain HTTP)",
        )
        _require(self.latency_ms >= 0 and self.latency_jitter_ms >= 0, "latency must be >= 0")
        _require(self.statuses_per_delivery >= 1, "statuses_per_delivery must be >= 1")
        _require(0 <= self.duplicate_rate <= 1, "duplicate_rate must be within 0..1")
        _require(0 <= self.click_rate <= 1, "click_rate must be within 0..1")
        rates = self.template_click_rates = dict(self.template_click_rates)
        _require(
            all(0 <= rate <= 1 for rate in rates.values()),
            "template_click_rates must be within 0..1",
        )
        low, high = self.stage_delay_ms
        _require(0 <= low <= high, "stage_delay_ms must be (low, high) with 0 <= low <= high")
        _require(self.portfolio_window_s > 0, "portfolio_window_s must be > 0")
        _require(self.webhook_concurrency >= 1, "webhook_concurrency must be >= 1")
        _require(self.webhook_retries >= 0, "webhook_retries must be >= 0")

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)

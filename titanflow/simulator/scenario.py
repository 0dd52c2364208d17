"""Scenarios: the failures the Meta simulator injects into sends, and the simulator's options.

A scenario is JSON, given with `manage.py meta_simulator --scenario FILE`, posted to
`POST /_sim/scenario` (same JSON; `{"rules": []}` clears it), or passed in process to
`start_simulator(scenario=...)` / `SimulatorHandle.set_scenario(...)`:

    {"rules": [
      {"error_code": 131042, "phone_number_id": "200000000000002", "after": 100},
      {"error_code": 131049, "share": 0.1, "delivery": "webhook"},
      {"message_status": "held_for_quality_assessment", "template": "new_offer"},
      {"error_code": 132015, "template": "spring_sale", "count": 1},
      {"error_code": 131049, "recipient": "971500000042", "delivery": "webhook"},
      {"error_code": 131000, "at_second": 30, "until": "2030-01-01T00:00:00Z"},
      {"timeout": true, "recipient": "971500000099"}
    ]}

Rule fields (all optional except `error_code`, which a pure `timeout` rule may omit):

- `phone_number_id` (string): only sends from this phone number id.
- `template` (string): only template sends of this template name (any language).
- `recipient` (string): only sends to this number, compared as digits ("+971 50 ..." is fine).
- `error_code` (integer): Meta's error code to answer, e.g. 131042, 131049, 132015.
- `http_status` (integer 400..599): the error's HTTP status; default 400, except 190 → 401,
  131000 → 500 and 131016 → 503.
- `after` (integer ≥ 0): the first N matching sends succeed, later ones fail.
- `count` (integer ≥ 1): fail only M sends, then the rule heals.
- `from` / `until` (ISO-8601 time, no zone = UTC): active from / no longer active at this time.
- `at_second` (number ≥ 0): active from N seconds after the scenario was loaded.
- `delivery` ("sync" or "webhook"): sync (default) answers the HTTP request with the error;
  webhook accepts the send (wamid returned and counted) and reports the error in a `failed`
  status webhook with `errors[]`, as Meta does for errors found after acceptance.
- `timeout` (boolean): accept and record the send, then answer nothing until the client's read
  timeout has surely passed (`timeout_hold_s`) and drop the connection: the ambiguous case.
- `share` (number 0..1): only this share of recipients, the same ones on every send and run
  (a hash of the number), e.g. `{"error_code": 131049, "share": 0.1, "delivery": "webhook"}`
  for Meta's per-user marketing cap on one person in ten.
- `message_status` ("held_for_quality_assessment" or "paused"): accept the send with this
  `message_status` in the answer instead of "accepted" (template pacing), without an error;
  its statuses stop at `sent` (Meta releases or drops it later).

Rules are tried in order; the first rule that fires decides the send, later rules do not see it.
A rule "matches" a send when its filters and time window fit; `after` and `count` count matching
sends of that rule. A sync error rejects the send (counted in `rejected_by_code`); anything else
is an accepted send. Rules apply after Meta's own checks (token, body shape, per-phone throughput,
template existence, status and parameter count), as on the real API. A scenario that does not
parse raises `ScenarioError` naming the rule index and field; the command exits non-zero with it.

Simulator options (`start_simulator(**opts)`, command flags in brackets):

- `latency_ms` [--latency-ms], `latency_jitter_ms` [--latency-jitter-ms]: the send answer waits
  latency plus a uniform random 0..jitter (both default 0).
- `webhook_url` [--webhook-url], `app_secret` [--app-secret, default settings.META_APP_SECRET]:
  with both set, every accepted send produces signed status webhooks (X-Hub-Signature-256).
- `statuses` [--statuses sent,delivered,read]: the stages each accepted message goes through;
  text (inbox) messages get them too, priced as free service messages.
- `statuses_per_delivery` [--statuses-per-delivery N]: up to N statuses per POST (waiting at
  most `batch_linger_ms`, default 50, to fill a batch); grouped per WABA entry and phone change.
- `duplicate_rate` [--duplicate-rate X]: the share of deliveries posted twice (0..1).
- `portfolio_limits` [--portfolio-limits] (false): each portfolio's messaging limit holds: a
  template to a recipient the portfolio has not reached within `portfolio_window_s`
  [--portfolio-window-s, default 86400] is accepted and fails by webhook with 131064 once the
  portfolio reached that many unique recipients. The limit is the account's `messaging_limit`
  tier, else the highest of its numbers'; POST /_sim/capability_event changes it.
- [--marketing-cap-share X] adds the rule `{"error_code": 131049, "share": X, "delivery":
  "webhook"}`; [--held-template NAME] (repeatable) adds `{"message_status":
  "held_for_quality_assessment", "template": NAME}`.
- `click_rate` [--click-rate X]: the share of read messages whose first TitanFlow short link
  (`/r/<token>`, in the body or a URL button) the recipient opens, after the read is posted (0..1).
- `template_click_rates` [--template-click-rates NAME=X,NAME=Y]: click rates per template name,
  over `click_rate`: an A/B test of those templates then has a winner to find.
- `shuffle` [--shuffle]: each message's stages happen in a random order (read before delivered).
- `stage_delay_ms` [--stage-delay-ms LOW,HIGH]: the wait before each stage, uniform in
  [LOW, HIGH] (default 50,200).
- `webhook_concurrency` (16), `webhook_timeout_s` (10), `webhook_retries` (2, with backoff):
  the bounded keep-alive client that posts webhooks off the request path.
- `timeout_hold_s` (30): how long a `timeout` rule holds the answer before dropping it.
- `record_bodies` [--no-record-bodies turns it off] (true): keep every accepted request body
  for `GET /_sim/messages`; counters are always kept.
- `seed` [--seed]: seeds the randomness (jitter, delays, shuffle, duplicates).
- `clock`: (in process only) the monotonic clock used for throughput windows and `at_second`.
- The world: [--world FILE], `start_simulator(world=...)`; its JSON shape is in `world.py`.

The simulator's own API (no auth; `SimulatorHandle` has a method for each):
GET /_sim/stats (?brief=1: totals only), GET /_sim/messages?to=DIGITS (exact accepted bodies,
in order), POST /_sim/reset (counters and scenario; the world stays), POST|GET /_sim/scenario,
POST|GET /_sim/world (merge, or `"replace": true`), POST /_sim/phone {"phone_number_id",
"max_mps", ...}, and Meta's events, each posted as a signed webhook and applied to the world:
POST /_sim/template_event {"template_id" | "waba_id"+"template_name" (+"language"), "event",
"reason"?}, /_sim/phone_event {"phone_number_id", "event", "messaging_limit"?,
"quality_rating"?; FLAGGED leaves the number RED, UNFLAGGED GREEN}, /_sim/capability_event
{"waba_id", "messaging_limit"} (business_capability_update), /_sim/account_event {"waba_id",
"event", ...details},
/_sim/inbound {"phone_number_id", "from", "text", "name"?, "context_id"?, "type"?: text|button},
/_sim/user_preferences {"phone_number_id", "wa_id", "value": stop|resume}.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from titanflow.simulator.world import digits

_FIELDS = {
    "phone_number_id": str,
    "template": str,
    "recipient": str,
    "error_code": int,
    "http_status": int,
    "after": int,
    "count": int,
    "from": str,
    "at_second": (int, float),
    "until": str,
    "delivery": str,
    "timeout": bool,
    "share": (int, float),
    "message_status": str,
}
DELIVERIES = ("sync", "webhook")
# Template pacing: what Meta's send answer may say instead of "accepted".
MESSAGE_STATUSES = ("held_for_quality_assessment", "paused")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the rule index and the field."""


@dataclass(eq=False)
class Rule:
    index: int
    error_code: int | None = None
    phone_number_id: str | None = None
    template: str | None = None
    recipient: str | None = None
    http_status: int | None = None
    after: int = 0
    count: int | None = None
    from_ts: float | None = None
    at_second: float | None = None
    until_ts: float | None = None
    delivery: str = "sync"
    timeout: bool = False
    share: float | None = None
    message_status: str | None = None
    seen: int = 0
    fired: int = 0

    def fits(self, *, phone_number_id: str, template: str | None, recipient: str) -> bool:
        return (
            (self.phone_number_id is None or self.phone_number_id == phone_number_id)
            and (self.template is None or self.template == template)
            and (self.recipient is None or self.recipient == recipient)
            and (self.share is None or recipient_draw(recipient) < self.share)
        )

    def active(self, *, elapsed: float, now: float) -> bool:
        return (
            (self.from_ts is None or now >= self.from_ts)
            and (self.until_ts is None or now < self.until_ts)
            and (self.at_second is None or elapsed >= self.at_second)
        )

    @property
    def rejects(self) -> bool:
        """True when the HTTP answer is the error (nothing accepted)."""
        return self.error_code is not None and self.delivery == "sync"


def recipient_draw(recipient: str) -> float:
    """A number in [0, 1) fixed for each recipient, so a `share` rule picks the same people on
    every send and every run (Meta's per-user cap follows the person, not the attempt)."""
    digest = hashlib.blake2b(recipient.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Scenario:
    def __init__(self, rules: list[Rule], *, loaded_at: float = 0.0):
        self.rules = rules
        self.loaded_at = loaded_at

    def fire(
        self,
        *,
        phone_number_id: str,
        template: str | None,
        recipient: str,
        clock_now: float,
        wall_now: float,
    ) -> Rule | None:
        """The rule that decides this send, counting it against every rule it matched."""
        elapsed = clock_now - self.loaded_at
        for rule in self.rules:
            fits = rule.fits(
                phone_number_id=phone_number_id, template=template, recipient=recipient
            )
            if not fits or not rule.active(elapsed=elapsed, now=wall_now):
                continue
            rule.seen += 1
            if rule.seen <= rule.after or (rule.count is not None and rule.fired >= rule.count):
                continue
            rule.fired += 1
            return rule
        return None


def parse_scenario(data: Any, *, loaded_at: float = 0.0) -> Scenario:
    """Build a Scenario from JSON text or an already decoded object; raise ScenarioError."""
    if isinstance(data, Scenario):
        return Scenario([_copy(rule) for rule in data.rules], loaded_at=loaded_at)
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ScenarioError(f"scenario is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
        raise ScenarioError('scenario must be an object {"rules": [...]}')
    unknown = sorted(set(data) - {"rules"})
    if unknown:
        raise ScenarioError(f"scenario: unknown field(s) {', '.join(unknown)}")
    rules = [_parse_rule(i, raw) for i, raw in enumerate(data.get("rules", []))]
    return Scenario(rules, loaded_at=loaded_at)


def load_scenario(path: str | Path) -> Scenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc.strerror}") from None
    return parse_scenario(text)


def _copy(rule: Rule) -> Rule:
    values = {name: getattr(rule, name) for name in Rule.__dataclass_fields__}
    return Rule(**{**values, "seen": 0, "fired": 0})


def _parse_rule(index: int, raw: Any) -> Rule:
    where = f"rule {index}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    for name, value in raw.items():
        _check_type(where, name, value)
    rule = Rule(
        index=index,
        error_code=raw.get("error_code"),
        phone_number_id=raw.get("phone_number_id"),
        template=raw.get("template"),
        recipient=digits(raw["recipient"]) if "recipient" in raw else None,
        http_status=raw.get("http_status"),
        after=raw.get("after", 0),
        count=raw.get("count"),
        from_ts=_timestamp(where, "from", raw.get("from")),
        at_second=raw.get("at_second"),
        until_ts=_timestamp(where, "until", raw.get("until")),
        delivery=raw.get("delivery", "sync"),
        timeout=raw.get("timeout", False),
        share=raw.get("share"),
        message_status=raw.get("message_status"),
    )
    _check_values(where, rule)
    return rule


def _check_type(where: str, name: str, value: Any) -> None:
    if name not in _FIELDS:
        raise ScenarioError(f"{where}: unknown field {name!r}")
    expected = _FIELDS[name]
    # bool is an int in Python, but `"after": true` is a mistake in a scenario file.
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        kind = "number" if expected == (int, float) else expected.__name__
        raise ScenarioError(f"{where}: field {name!r} must be {kind}, got {value!r}")


def _check_values(where: str, rule: Rule) -> None:
    if rule.delivery not in DELIVERIES:
        raise ScenarioError(f"{where}: field 'delivery' must be sync or webhook")
    if rule.error_code is None and not rule.timeout and rule.message_status is None:
        raise ScenarioError(
            f"{where}: field 'error_code' is required (or 'timeout': true, or 'message_status')"
        )
    if rule.message_status is not None and rule.message_status not in MESSAGE_STATUSES:
        raise ScenarioError(f"{where}: field 'message_status' must be one of {MESSAGE_STATUSES}")
    if rule.message_status is not None and rule.error_code is not None:
        raise ScenarioError(f"{where}: 'message_status' accepts the send: drop 'error_code'")
    if rule.share is not None and not 0 <= rule.share <= 1:
        raise ScenarioError(f"{where}: field 'share' must be within 0..1")
    if rule.timeout and rule.rejects:
        raise ScenarioError(f"{where}: field 'timeout' needs an accepted send: delivery webhook")
    if rule.http_status is not None and not 400 <= rule.http_status <= 599:
        raise ScenarioError(f"{where}: field 'http_status' must be 400..599")
    for name in ("after", "at_second"):
        if (getattr(rule, name) or 0) < 0:
            raise ScenarioError(f"{where}: field {name!r} must not be negative")
    if rule.count is not None and rule.count < 1:
        raise ScenarioError(f"{where}: field 'count' must be at least 1")
    if rule.recipient == "":
        raise ScenarioError(f"{where}: field 'recipient' holds no digits")


def _timestamp(where: str, name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ScenarioError(f"{where}: field {name!r} is not an ISO-8601 time: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

"""The simulated Meta: one object holding the world, the scenario, the counters and the poster.

Everything here runs on the server's event loop thread, so no state needs a lock; the send path
is synchronous apart from the latency wait, which keeps throughput checks exact under load.
"""

import base64
import hashlib
import itertools
import random
import secrets
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from functools import partial

from titanflow.simulator.clicks import message_links
from titanflow.simulator.errors import GraphError, invalid_token, unknown_object
from titanflow.simulator.options import SimulatorOptions
from titanflow.simulator.payloads import StatusNote
from titanflow.simulator.scenario import Rule, Scenario, parse_scenario
from titanflow.simulator.validation import Outgoing, check_template, parse_message
from titanflow.simulator.webhooks import WebhookPoster
from titanflow.simulator.world import Account, Phone, Template, World, digits

# Meta documents no code of its own for a portfolio over its messaging limit; the send is
# accepted and fails by webhook with 131064 ("messaging limit reached"), the catalogue's code.
OVER_PORTFOLIO_LIMIT = Rule(index=-1, error_code=131064, delivery="webhook")


@dataclass
class SendOutcome:
    body: dict
    hold: bool = False  # a timeout rule: keep the client waiting, then drop the connection


class Counters:
    def __init__(self):
        self.accepted_total = 0
        self.text_messages = 0
        self.by_recipient: Counter[str] = Counter()
        self.by_phone: Counter[str] = Counter()
        self.by_template: Counter[str] = Counter()
        self.rejected_by_code: Counter[str] = Counter()
        self.bodies: list[bytes] = []
        self.bodies_by_recipient: dict[str, list[bytes]] = {}

    def as_dict(self, *, brief: bool = False) -> dict:
        totals = {
            "accepted_total": self.accepted_total,
            "rejected_by_code": dict(self.rejected_by_code),
            "text_messages": self.text_messages,
        }
        if brief:
            return totals
        return {
            **totals,
            "accepted_by_recipient": dict(self.by_recipient),
            "accepted_by_phone": dict(self.by_phone),
            "accepted_by_template": dict(self.by_template),
        }


class Simulator:
    def __init__(self, *, world: World, scenario=None, options: SimulatorOptions | None = None):
        self.world = world
        self.options = options or SimulatorOptions()
        self.rng = random.Random(self.options.seed)
        self.webhooks = WebhookPoster(self.options, self.rng)
        self.counters = Counters()
        self.load_scenario(scenario)
        self._windows: dict[str, deque[float]] = {}
        self._portfolio: dict[str, OrderedDict[str, float]] = {}
        # A per-run prefix keeps wamids unique across restarts (Message.wamid is unique).
        self._run = secrets.token_hex(4)
        self._sequence = itertools.count(1)

    def load_scenario(self, data) -> Scenario:
        """Parse and install a scenario (raises ScenarioError); `at_second` counts from now."""
        self.scenario = parse_scenario(data or {"rules": []}, loaded_at=self.options.clock())
        return self.scenario

    def reset(self) -> None:
        self.counters = Counters()
        self.webhooks.reset_counters()
        self._windows.clear()
        self._portfolio.clear()
        self.load_scenario(None)

    def authorize(self, node_id: str, token: str | None, *, method: str) -> Account:
        account = self.world.owner(node_id)
        if account is None:
            known = token and any(a.access_token == token for a in self.world.accounts.values())
            raise unknown_object(node_id, method) if known else invalid_token()
        if not token or token != account.access_token:
            raise invalid_token()
        return account

    def send(self, *, phone_number_id: str, token: str | None, raw: bytes) -> SendOutcome:
        """Meta's send endpoint: the success body, or GraphError for the error answer."""
        try:
            return self._send(phone_number_id, token, raw)
        except GraphError as error:
            self.counters.rejected_by_code[str(error.code)] += 1
            raise

    def _send(self, phone_number_id: str, token: str | None, raw: bytes) -> SendOutcome:
        self.authorize(phone_number_id, token, method="post")
        phone = self.world.phones.get(phone_number_id)
        if phone is None:  # a WABA id: it has no messages edge
            raise unknown_object(phone_number_id, "post")
        outgoing = parse_message(raw)
        self._take_throughput(phone)
        template = None
        if outgoing.kind == "template":
            template = check_template(self.world, phone, outgoing)
        rule = self.scenario.fire(
            phone_number_id=phone_number_id,
            template=outgoing.template_name,
            recipient=outgoing.wa_id,
            clock_now=self.options.clock(),
            wall_now=time.time(),
        )
        if rule is not None and rule.rejects:
            raise GraphError(rule.error_code, http_status=rule.http_status or 0)
        if rule is None and self._over_portfolio_limit(phone, outgoing):
            rule = OVER_PORTFOLIO_LIMIT
        wamid = self._accept(phone, outgoing, raw)
        self.webhooks.schedule(self._status_notes(phone, outgoing, template, wamid, rule))
        accepted = (rule.message_status if rule else None) or "accepted"
        return SendOutcome(
            _success_body(outgoing, wamid, accepted), hold=bool(rule and rule.timeout)
        )

    def _over_portfolio_limit(self, phone: Phone, outgoing: Outgoing) -> bool:
        """With `portfolio_limits`, a template to a recipient the portfolio has not reached in
        its rolling window, once it reached its limit of unique recipients."""
        if not self.options.portfolio_limits or outgoing.kind != "template":
            return False
        limit = self.world.portfolio_limit(phone.waba_id)
        now = self.options.clock()
        reached = self._portfolio.setdefault(phone.waba_id, OrderedDict())
        while reached and next(iter(reached.values())) <= now - self.options.portfolio_window_s:
            reached.popitem(last=False)  # ordered by last send: the oldest leave first
        if outgoing.wa_id in reached:
            reached.move_to_end(outgoing.wa_id)
        elif limit is not None and len(reached) >= limit:
            return True
        reached[outgoing.wa_id] = now
        return False

    def _take_throughput(self, phone: Phone) -> None:
        now = self.options.clock()
        window = self._windows.setdefault(phone.phone_number_id, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= phone.max_mps:
            raise GraphError(130429)
        window.append(now)

    def _accept(self, phone: Phone, outgoing: Outgoing, raw: bytes) -> str:
        counters = self.counters
        counters.accepted_total += 1
        counters.by_recipient[outgoing.wa_id] += 1
        counters.by_phone[phone.phone_number_id] += 1
        if outgoing.kind == "text":
            counters.text_messages += 1
        else:
            counters.by_template[outgoing.template_name] += 1
        if self.options.record_bodies:
            counters.bodies.append(raw)
            counters.bodies_by_recipient.setdefault(outgoing.wa_id, []).append(raw)
        return self.next_wamid(outgoing.wa_id)

    def _status_notes(
        self,
        phone: Phone,
        outgoing: Outgoing,
        template: Template | None,
        wamid: str,
        rule: Rule | None,
    ) -> list[StatusNote]:
        if not self.webhooks.enabled:
            return []
        category = template.category.lower() if template else "service"
        key = f"{phone.phone_number_id}:{outgoing.wa_id}".encode()
        conversation = hashlib.blake2b(key, digest_size=16).hexdigest()
        note = partial(
            StatusNote,
            phone=phone,
            wamid=wamid,
            recipient_id=outgoing.wa_id,
            category=category,
            conversation_id=conversation,
            biz_opaque_callback_data=outgoing.biz_opaque_callback_data,
            template=outgoing.template_name or "",
        )
        if rule is not None and rule.error_code is not None:
            return [note(status="failed", error=GraphError(rule.error_code).webhook_error())]
        if rule is not None and rule.message_status is not None:
            return [note(status="sent")]  # held: nothing is delivered until Meta releases it
        links = message_links(outgoing.components, template.components if template else None)
        return [
            note(status=status, links=links if status == "read" else ())
            for status in self.options.statuses
        ]

    def messages(self, to: str | None = None) -> list[bytes]:
        if to is None:
            return list(self.counters.bodies)
        return list(self.counters.bodies_by_recipient.get(digits(to), []))

    def stats(self, *, brief: bool = False) -> dict:
        """What was accepted and posted; `brief` keeps the totals only (no per-recipient,
        phone or template counts, no latency percentiles), cheap enough to poll."""
        return {**self.counters.as_dict(brief=brief), "webhooks": self.webhooks.stats(brief=brief)}

    def next_wamid(self, wa_id: str) -> str:
        serial = f"{self._run}{next(self._sequence):012d}{wa_id}"
        return "wamid." + base64.b64encode(serial.encode()).decode()


def _success_body(outgoing: Outgoing, wamid: str, message_status: str = "accepted") -> dict:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": outgoing.to, "wa_id": outgoing.wa_id}],
        "messages": [{"id": wamid, "message_status": message_status}],
    }

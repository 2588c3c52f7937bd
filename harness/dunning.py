"""Builders of dunning inputs for pure unit tests (no broker, no database)."""
from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from pathlib import Path
from zoneinfo import ZoneInfo

from schemas.decision import validate_decision
from schemas.decision_payloads import validate_decision_payload
from services.common.decisions import decision_envelopes
from services.common.ids import derived_id
from services.common.policy import load_policy
from services.common.runtime.timers import decode_timer, timer_message
from services.dunning.decider import DunningDecider
from services.dunning.domain.policy import DunningPolicySchema, build_policy

from .input_events import Event

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "services/dunning/policy/default.json"


def policy():
    return load_policy(DEFAULT_POLICY, DunningPolicySchema(), build_policy)


def bill(account: str, bill_id: str, due: datetime, fen: int, level: str = "B", tier: str = "standard") -> Event:
    return Event(
        event_id=derived_id("test-input", bill_id),
        event_type="billing.bill.v1",
        event_time=due - timedelta(days=14),
        payload={
            "billId": bill_id,
            "accountId": account,
            "paymentDueDate": due,
            "amountDue": {"amountMinor": fen, "currency": "CNY"},
            "customer": {"creditLevel": level, "customerTier": tier, "important": False},
        },
    )


def payment(account: str, payment_id: str, when: datetime, fen: int, bill_id: str | None = None,
            status: str = "received", reverses: str | None = None) -> Event:
    payload = {
        "paymentId": payment_id,
        "accountId": account,
        "amount": {"amountMinor": fen, "currency": "CNY"},
        "paymentDate": when,
        "status": status,
    }
    if bill_id:
        payload["billId"] = bill_id
    if reverses:
        payload["reversesPaymentId"] = reverses
    return Event(event_id=derived_id("test-input", payment_id), event_type="billing.payment.v1", event_time=when, payload=payload)


def timer_for(decision: dict):
    """The input the runtime makes of a due timer (same ids, same business time)."""
    timer = decision["payload"]["timer"]
    return decode_timer(
        timer_message(
            "dunning", timer["timerId"], datetime.fromisoformat(timer["dueAt"]), timer["kind"],
            decision["streamId"], timer["data"],
        )
    )


class Account:
    """Drives the pure decider the way the runtime does: decide, envelope, evolve."""

    def __init__(self, loaded=None):
        self.decider = DunningDecider()
        self.loaded = loaded or policy()
        self.state = self.decider.initial_state()
        self.log: list[dict] = []
        self.fired: set[str] = set()
        # Kept as decisions are logged: read from the whole log at every fired timer, a year of
        # reminders cost a property test a quadratic scan.
        self.scheduled: dict[str, dict] = {}  # timer id -> the latest decision that set it
        self.cancelled: set[str] = set()

    def feed(self, event: Event) -> list[dict]:
        decisions = self.decider.decide(self.state, event, self.loaded.rules)
        envelopes = decision_envelopes(
            decisions, event=event, stream_id=self.decider.stream_id(event) if event.event_type != "wuguan.timer.v1" else event.payload["streamId"],
            service="dunning", service_version="test", policy_version=self.loaded.version,
        )
        for envelope in envelopes:
            validate_decision(envelope, "dunning.decisions.v1")  # every decision keeps the published contract
            validate_decision_payload(orjson.loads(orjson.dumps(envelope)), unknown_type_ok=True)  # its type's schema
            self.state = self.decider.evolve(self.state, envelope)
            if "timer" in envelope["payload"]:
                self.scheduled[envelope["payload"]["timer"]["timerId"]] = envelope
            self.cancelled.update(envelope["payload"].get("cancelsTimers", ()))
        self.log.extend(envelopes)
        return envelopes

    def pending_timers(self) -> dict[str, dict]:
        return {t: d for t, d in self.scheduled.items() if t not in self.cancelled and t not in self.fired}

    def fire_due_timers(self, until: datetime) -> list[dict]:
        """Fire every timer due by `until`, earliest first, including ones scheduled meanwhile."""
        fired = []
        while True:
            due = sorted(
                (datetime.fromisoformat(d["payload"]["timer"]["dueAt"]), t, d)
                for t, d in self.pending_timers().items()
                if datetime.fromisoformat(d["payload"]["timer"]["dueAt"]) <= until
            )
            if not due:
                return fired
            _, timer_id, decision = due[0]
            self.fired.add(timer_id)
            fired.extend(self.feed(timer_for(decision)))


def delivery(account: str, reminder_id: str, outcome: str, when: datetime, channel: str = "voice") -> Event:
    return Event(
        event_id=derived_id("test-input", "delivery", reminder_id, outcome),
        event_type="dunning.delivery.v1",
        event_time=when,
        payload={"reminderId": reminder_id, "accountId": account, "channel": channel, "outcome": outcome, "attemptedAt": when},
    )


def guard_decision(account: str, kind: str, when: datetime, body: dict, name: str) -> Event:
    decision_id = derived_id("test-guard", name)
    decision = {
        "decisionId": decision_id, "decisionType": kind, "ruleIds": ["D.HOLD"], "outcome": "accepted",
        "reasonCodes": [], "causedBy": [derived_id("test-input", name)], "policyVersion": "guard-test",
        "service": "billing_guard", "serviceVersion": "test", "businessTime": when.isoformat(),
        "streamId": f"guard-account-{account}", "correlationId": None, "payload": {"accountId": account, **body},
    }
    return Event(event_id=decision_id, event_type="guard.decisions.v1", event_time=when, payload=decision)


def of_type(decisions: list[dict], kind: str) -> list[dict]:
    return [d for d in decisions if d["decisionType"] == kind]

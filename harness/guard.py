"""Builders of billing_guard inputs and a pure harness that drives decide/evolve the way the
runtime does (streams, envelopes, timers, Rejected, the repartition topic's notes and the
snapshot streams); no broker, no database."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from schemas.decision_payloads import validate_decision_payload
from schemas.errors import InvalidEvent
from schemas.registry import REPARTITION_TOPICS
from services.common.decider import Rejected
from services.common.decisions import decision_envelopes
from services.common.policy import load_policy
from services.common.runtime.timers import decode_timer, timer_message
from services.common.runtime.claims import claim_id, is_claim
from services.common.runtime.decision_inputs import decode_repartitioned
from services.common.stream_views import base_stream, is_view
from services.billing_guard.decider import GuardDecider
from services.billing_guard.domain.policy import GuardPolicySchema, build_policy

from .input_events import Event

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "services/billing_guard/policy/default.json"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=SHANGHAI)
ROUTED = REPARTITION_TOPICS["billing_guard"]
_ids = itertools.count(1)


def policy():
    return load_policy(DEFAULT_POLICY, GuardPolicySchema(), build_policy)


def rate(usage="voice", dest="local", per_min=10, inc=60, connect=0, cap=None, bands=None) -> dict:
    r = {"usageType": usage, "destinationClass": dest, "ratePerMinuteMinor": per_min,
         "incrementSeconds": inc, "connectFeeMinor": connect, "capMinor": cap}
    if bands:
        r["timeBands"] = [{"startTime": s, "endTime": e, "ratePerMinuteMinor": x} for s, e, x in bands]
    return r


def standard_rates(per_min=10, inc=60, connect=0, cap=None) -> list[dict]:
    return [rate(u, d, per_min, inc, connect, cap) for u in ("voice", "sms", "data")
            for d in ("local", "domestic", "international", "roaming")]


def tariff(version: int, effective: datetime, rates=None, tariff_id="T-STD", published=None, at=None,
           replaces=None, approval=None, filing=None, free=0) -> Event:
    payload = {"tariffId": tariff_id, "version": version, "name": f"{tariff_id} v{version}",
               "publishedAt": published or effective - timedelta(days=1), "effectiveFrom": effective,
               "replacesVersion": replaces, "approvalRef": approval, "filingRef": filing,
               "freeAllowanceSeconds": free, "rates": rates or standard_rates()}
    return Event(f"ev-tariff-{tariff_id}-{version}-{next(_ids)}", "billing.tariff.v1",
                 at or (payload["publishedAt"]), payload)


def cdr(account="A1", start=None, seconds=60, switch="SW1", origin=None, seq=None, usage="voice", dest="local",
        received=None, volume=None, area=None, usage_id=None, end=None) -> Event:
    n = next(_ids)
    start = start or T0 + timedelta(days=2)
    payload = {"usageId": usage_id or f"U{n}", "switchId": switch, "originId": origin or f"O{n}",
               "sequenceNumber": n if seq is None else seq, "accountId": account,
               "callingNumber": "13812345678", "calledNumber": "13987654321", "usageType": usage,
               "destinationClass": dest, "startDateTime": start,
               "endDateTime": end or start + timedelta(seconds=max(seconds, 0)), "durationSeconds": seconds,
               "volumeBytes": volume, "collection": "online", "areaCode": area, "province": None}
    return Event(f"ev-cdr-{n}", "billing.cdr.v1", received or start + timedelta(minutes=1), payload)


def bill(account: str, bill_id: str, cycle_start: datetime, fen: int) -> Event:
    end = (cycle_start + timedelta(days=32)).replace(day=1)
    payload = {"billId": bill_id, "billNo": bill_id, "accountId": account,
               "billingPeriod": {"startDateTime": cycle_start, "endDateTime": end},
               "billDate": end + timedelta(days=1), "paymentDueDate": end + timedelta(days=15),
               "amountDue": {"amountMinor": fen, "currency": "CNY"}, "state": "sent",
               "customer": {"creditLevel": "B", "customerTier": "standard", "important": False}}
    return Event(f"ev-bill-{bill_id}-{next(_ids)}", "billing.bill.v1", end + timedelta(days=1), payload)


def dispute(account: str, ticket: str, action: str, when: datetime, actor="agent-1", **extra) -> Event:
    payload = {"ticketId": ticket, "ticketType": "Bill Dispute", "action": action, "accountId": account,
               "reason": "customer says wrong", "channel": "hotline", "actorId": actor, "billId": None,
               "disputedItems": None, "disputedAmount": None, "toOwnerId": None, "resolution": None,
               "creditAmount": None, "replyText": None}
    payload.update(extra)
    return Event(f"ev-dispute-{ticket}-{action}-{next(_ids)}", "billing.dispute.v1", when, payload)


def fen(amount: int) -> dict:
    return {"amountMinor": amount, "currency": "CNY"}


def customer_change(account: str, name: str, old, new, when: datetime, role="billingAdmin", operator="op-1",
                    approver=None, requested=None) -> Event:
    payload = {"requestId": f"R{next(_ids)}", "accountId": account, "field": name, "oldValue": old,
               "newValue": new, "operatorId": operator, "operatorRole": role, "approverId": approver,
               "channel": "counter", "reason": "customer request", "requestedEffectiveFrom": requested}
    return Event(f"ev-cust-{payload['requestId']}", "billing.customer.v1", when, payload)


def work(work_id: str, when: datetime, start: datetime, hours=4, provinces=("Jiangsu",), approvals=(),
         notices=(), vip=False, switches=("SW1",), accounts=("A1",), action="planned", outage=None) -> Event:
    payload = {"workId": work_id, "action": action, "workKind": "cutover", "provinces": list(provinces),
               "areas": ["025"], "switchIds": list(switches), "plannedStart": start,
               "plannedEnd": start + timedelta(hours=max(hours, 1)), "expectedImpactHours": hours,
               "affectsImportantCustomers": vip,
               "approvals": [{"authority": a, "reference": f"REF-{a}"} for a in approvals],
               "notices": [{"channel": "voicePrompt", "sentAt": s} for s in notices],
               "affectedAccountIds": list(accounts),
               "actualOutageStart": outage[0] if outage else None, "actualOutageEnd": outage[1] if outage else None}
    return Event(f"ev-work-{work_id}-{action}-{next(_ids)}", "billing.cutover.v1", when, payload)


def note_for(envelope: dict):
    """A routed decision as the guard reads it back from its repartition topic, decoded by the
    runtime's own reader: the note's id is the decisionId."""
    (note,) = decode_repartitioned(ROUTED.topic, orjson.dumps([envelope]))
    if isinstance(note, InvalidEvent):
        raise note
    return note


def timer_for(decision: dict):
    timer = decision["payload"]["timer"]
    return decode_timer(timer_message("billing_guard", timer["timerId"], datetime.fromisoformat(timer["dueAt"]),
                                      timer["kind"], decision["streamId"], timer["data"]))


class Guard:
    """Every stream of the guard in memory, fed the way BatchProcessor feeds them. Each stored
    decision of a routed type (REPARTITION_TOPICS) is then fed back at once as a note to its
    switch, as the relay and the switch's owner would, in the order the decisions were stored."""

    def __init__(self, loaded=None, route: bool = True):
        self.decider = GuardDecider()
        self.loaded = loaded or policy()
        self.route = route  # False: notes wait in `self.notes` for the test to feed (or not, or twice)
        self.states: dict = {}
        self.claims: dict = {}  # claim id -> value, as the store's unique_claims table
        self.log: list[dict] = []  # stored decisions only
        self.changes: list[dict] = []  # Decision.stored=False: folded into a snapshot stream, never stored
        self.notes: list[Event] = []  # every note the routed decisions made, in log order
        self.dead: list[tuple[str, Rejected]] = []
        self.fired: set[str] = set()

    def state(self, stream_id: str):
        if is_claim(stream_id):
            return self.claims.get(stream_id)
        if is_view(stream_id):  # folded from the log whenever asked, as the runtime does
            state = self.decider.initial_state(stream_id)
            for decision in self.log:
                if decision["streamId"] == base_stream(stream_id):
                    state = self.decider.evolve(state, decision)
            return state
        if stream_id not in self.states:
            self.states[stream_id] = self.decider.initial_state(stream_id)
        return self.states[stream_id]

    def feed(self, event) -> list[dict]:
        """The stored decisions about `event`, then (when routing) those about the notes it made."""
        envelopes = self.decide(event)
        notes = [note_for(e) for e in envelopes if e["decisionType"] in ROUTED.decision_types]
        self.notes.extend(notes)
        if self.route:
            for note in notes:
                envelopes = envelopes + self.decide(note)
        return envelopes

    def decide(self, event) -> list[dict]:
        """One input through decide and evolve; returns its stored decisions, enveloped."""
        if event.event_type == "wuguan.timer.v1":
            streams = (event.payload["streamId"],)
        else:
            streams = self.decider.stream_ids(event)
        view = {s: self.state(s) for s in streams}
        try:
            decisions = self.decider.decide(view, event, self.loaded.rules)
        except Rejected as exc:
            self.dead.append((event.event_id, exc))
            return []
        envelopes = iter(decision_envelopes([d for d in decisions if d.stored], event=event, stream_id=streams[0],
                                            service="billing_guard", service_version="test",
                                            policy_version=self.loaded.version))
        stored = []
        for decision in decisions:  # folded in the order decided, stored or not
            if decision.stored:
                stored.append(self._store(next(envelopes), view))
            else:
                self._change(decision, streams[0])
        self._snapshot(streams)
        self.log.extend(stored)
        return stored

    def _store(self, envelope: dict, view: dict) -> dict:
        validate_decision_payload(orjson.loads(orjson.dumps(envelope)), unknown_type_ok=True)  # its type's schema
        assert envelope["streamId"] in view, envelope["decisionType"]
        self.states[envelope["streamId"]] = self.decider.evolve(self.states[envelope["streamId"]], envelope)
        for key, value in self.decider.claims_made(envelope):
            self.claims.setdefault(claim_id(key), value)
        return envelope

    def _change(self, decision, default_stream: str) -> None:
        """A state change that is no decision: the runtime folds it as this dict, and only into a
        stream it keeps as a snapshot."""
        target = decision.stream_id or default_stream
        assert self.decider.snapshot_codec(target) is not None, (decision.decision_type, target)
        change = {"decisionType": decision.decision_type, "outcome": decision.outcome, "payload": decision.payload,
                  "streamId": target}
        self.states[target] = self.decider.evolve(self.states[target], change)
        self.changes.append(change)

    def _snapshot(self, streams) -> None:
        """A snapshot stream's state goes through its codec and JSON, as the runtime stores it, so
        whatever the codec loses shows in the next decision."""
        for stream_id in streams:
            codec = self.decider.snapshot_codec(stream_id)
            if codec is not None and stream_id in self.states:
                self.states[stream_id] = codec.load(orjson.loads(orjson.dumps(codec.dump(self.states[stream_id]))))

    def fire_due_timers(self, until: datetime) -> list[dict]:
        pending, cancelled = {}, set()
        for d in self.log:
            if "timer" in d["payload"]:
                pending[d["payload"]["timer"]["timerId"]] = d
            cancelled.update(d["payload"].get("cancelsTimers", ()))
        fired = []
        for timer_id, d in sorted(pending.items(), key=lambda kv: kv[1]["payload"]["timer"]["dueAt"]):
            if timer_id in cancelled or timer_id in self.fired:
                continue
            if datetime.fromisoformat(d["payload"]["timer"]["dueAt"]) <= until:
                self.fired.add(timer_id)
                fired.extend(self.feed(timer_for(d)))
        return fired

    def account_log(self, account: str) -> list[dict]:
        return [d for d in self.log if d["streamId"] == f"guard-account-{account}"]


def of_type(decisions: list[dict], kind: str) -> list[dict]:
    return [d for d in decisions if d["decisionType"] == kind]

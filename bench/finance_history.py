"""A year of back-office decisions for the finance list benchmark (bench.queries), in the
shape the services store them.

Two sources, both shaped by the real code:
- account lives (monthly bills and payments, arrears, reminders and their delivery, late fees,
  suspensions and restorations, disputes with transfers, replies and credit notes) and card
  outlets (stock, sales, usage, complaints) are decided by the real deciders, driven by the
  pure harnesses the unit tests use (tests/unit/*_fixtures), each service consuming the
  other's decisions it subscribes to (`decision_types_consumed`);
- the bulk, rated CDRs, is cloned from a pool of CdrRated decisions the real guard made, with
  fresh ids, accounts, switches, sequence numbers, phone numbers and times, and enveloped by
  services.common.decisions.decision_envelopes. A CDR stores that one decision: its switch
  judges the sequence from the charge itself and stores a record only when a gap opens or
  closes (issue 13), which a bulk numbered in order per switch never does.
  Folding 400k+ CDRs through the guard's account state would take minutes, and the finance
  projections read nothing of a charge but its account.

Decisions come out in business-time order, kept causal within each life (a decision is never
placed before one it followed), as workers deciding inputs as they arrive would store them.
bench/event_writer.py stores them with COPY and the real hash chain.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import multiprocessing
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from schemas.decision_types import dunning as dunning_types
from schemas.decision_types import guard as guard_types
from services.billing_guard.decider import GuardDecider
from services.billing_guard.domain.cycles import cycle_of
from services.common.decider import Decision
from services.common.decisions import decision_envelopes
from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339, rfc3339
from services.dunning.decider import DunningDecider
from services.dunning.domain.holds import concerns_dunning
from harness import cards as cf
from harness import dunning as df
from harness import guard as gf
from harness.input_events import Event

from .workload import DESTINATIONS, SHANGHAI, USAGE, tariff_rates

START = datetime(2025, 1, 1, tzinfo=SHANGHAI)
# One stored decision and the key that orders it in the log (business time, kept causal).
Keyed = tuple[datetime, int, dict]


@dataclass(frozen=True)
class Shape:
    events: int = 1_000_000
    accounts: int = 5_000
    months: int = 12
    outlets: int = 40
    switches: int = 64
    seed: int = 6
    start: datetime = START

    @property
    def end(self) -> datetime:
        return _add_months(self.start, self.months)


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    return moment.replace(year=moment.year + year, month=month + 1)


def _as_stored(envelope: dict) -> dict:
    return orjson.loads(orjson.dumps(envelope))  # JSON only, as the store holds it


def _renamed(event, life: str, n: int, when: datetime | None = None):
    """The life's n-th input, with an id of its own: the harnesses number inputs per process
    ("ev-cdr-7"), so the ids would depend on which worker decided which life; upstream ids (and
    so causedBy) are UUIDs."""
    return dataclasses.replace(event, event_id=derived_id("bench-input", life, n), event_time=when or event.event_time)


def _guard_with_tariff(start: datetime) -> gf.Guard:
    guard = gf.Guard()
    guard.feed(gf.tariff(1, start - timedelta(days=30), rates=tariff_rates(), free=600))
    return guard


# --- account lives: the real guard and dunning deciders ------------------------------------------

DUNNING_WANTS = frozenset(DunningDecider.decision_types_consumed)
GUARD_WANTS = frozenset(GuardDecider.decision_types_consumed)
CREDIT_LEVELS = (("A", 25), ("B", 35), ("C", 25), ("D", 10), ("E", 5))
TIERS = (("diamond", 1), ("gold", 4), ("silver", 15), ("standard", 80))
DELIVERY = {"letter": ("posted",), "sms": ("posted",), "voice": ("answered", "noAnswer"),
            "manual": ("answered", "noAnswer"), "accountManager": ("answered",)}


def _pick(rng: random.Random, weighted) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


class AccountLife:
    """One account over the months: its inputs in time order, each service fed what it consumes,
    timers fired on the business clock, reactions (deliveries, restorations) scheduled."""

    def __init__(self, account: str, shape: Shape, rng: random.Random, proto: gf.Guard, dunning_policy):
        self.account, self.shape, self.rng = account, shape, rng
        self.tickets = itertools.count(1)
        self.usages = itertools.count(1)
        self.inputs = itertools.count(1)
        self.guard = gf.Guard(loaded=proto.loaded)
        self.guard.states.update(proto.states)  # the tariff catalogue; states are immutable
        self.dunning = df.Account(loaded=dunning_policy)
        self.customer = {"creditLevel": _pick(rng, CREDIT_LEVELS), "customerTier": _pick(rng, TIERS),
                         "important": rng.random() < 0.02}
        self.agenda: list = []
        self.n = itertools.count()
        self.pending: dict[str, datetime] = {}  # timer id -> due, to fire only when one is due
        self.out: list[Keyed] = []
        self.clock = shape.start
        self.calls: list[str] = []  # usage ids rated since the last dispute, to dispute
        self.owners: dict[str, str] = {}  # ticket -> agent who owns it

    def at(self, when: datetime, action, *args) -> None:
        if when < self.shape.end:
            heapq.heappush(self.agenda, (when, next(self.n), action, args))

    def run(self) -> list[Keyed]:
        for month in range(self.shape.months):
            self.plan_bill(month)
        while self.agenda:
            when, _, action, args = heapq.heappop(self.agenda)
            self.fire(when)
            action(when, *args)
        self.fire(self.shape.end)
        return self.out

    # -- plumbing ----------------------------------------------------------------------------
    def fire(self, until: datetime) -> None:
        # The harnesses scan their whole log for due timers: only ask when one is due. A fired
        # timer's decisions can set timers for the other service, due at once: ask again.
        for _ in range(4):
            if not self.pending or min(self.pending.values()) > until:
                return
            self.record("guard", self.guard.fire_due_timers(until))
            self.record("dunning", self.dunning.fire_due_timers(until))
            for timer_id in self.guard.fired | self.dunning.fired:
                self.pending.pop(timer_id, None)

    def record(self, service: str, envelopes: list[dict]) -> None:
        for envelope in envelopes:
            envelope = _as_stored(envelope)
            kind, body = envelope["decisionType"], envelope["payload"]
            if kind == guard_types.SWITCH_SEQUENCE_RECORDED:
                continue  # a life's few CDRs would scramble the bulk's switch sequences
            moment = parse_rfc3339(envelope["businessTime"])
            self.clock = max(self.clock, moment)
            self.out.append((self.clock, len(self.out), envelope))
            if "timer" in body:
                self.pending[body["timer"]["timerId"]] = parse_rfc3339(body["timer"]["dueAt"])
            for timer_id in body.get("cancelsTimers", ()):
                self.pending.pop(timer_id, None)
            self.react(service, envelope, moment)

    def react(self, service: str, envelope: dict, moment: datetime) -> None:
        kind = envelope["decisionType"]
        if service == "guard" and kind in DUNNING_WANTS and concerns_dunning(envelope):
            self.record("dunning", self.dunning.feed(Event(envelope["decisionId"], "guard.decisions.v1", moment,
                                                           envelope)))
        elif service == "dunning" and kind in GUARD_WANTS:
            self.record("guard", self.guard.feed(Event(envelope["decisionId"], "dunning.decisions.v1", moment,
                                                       envelope)))
        if kind == dunning_types.REMINDER_DUE:
            channel = envelope["payload"]["channel"]
            outcome = self.rng.choice(DELIVERY.get(channel, ("posted",)))
            self.at(moment + timedelta(hours=self.rng.randint(2, 72)), self.delivered,
                    envelope["decisionId"], channel, outcome)
        elif kind == guard_types.RESTORATION_ORDERED:
            # Most lines are back within the 48 h SLA; some are not (CP4.RESTORE_48H).
            hours = self.rng.randint(1, 40) if self.rng.random() < 0.8 else self.rng.randint(49, 90)
            self.at(moment + timedelta(hours=hours), self.restored, envelope["decisionId"])

    def both(self, event: Event) -> None:
        self.record("guard", self.guard.feed(event))
        self.record("dunning", self.dunning.feed(event))

    # -- inputs ------------------------------------------------------------------------------
    def plan_bill(self, month: int) -> None:
        rng = self.rng
        cycle_start = _add_months(self.shape.start, month)
        bill_id = f"BILL-{self.account}-{cycle_start:%Y%m}"
        fen = rng.randint(2_000, 40_000)
        bill = gf.bill(self.account, bill_id, cycle_start, fen)
        bill.payload["customer"] = self.customer
        issued = bill.event_time + timedelta(hours=rng.randint(0, 20))
        bill = _renamed(bill, self.account, next(self.inputs), issued)
        due = bill.payload["paymentDueDate"]
        self.at(issued, self.billed, bill)
        if rng.random() < 0.03:
            self.plan_dispute(bill_id, cycle_start, issued, fen)
        roll = rng.random()
        if roll < 0.80:
            paid = due - timedelta(days=rng.randint(0, 12), hours=rng.randint(1, 20))
        elif roll < 0.94:
            paid = due + timedelta(days=rng.randint(2, 28), hours=rng.randint(0, 20))
        elif roll < 0.985:
            paid = due + timedelta(days=rng.randint(32, 60), hours=rng.randint(0, 20))
        else:
            return  # never paid within the horizon: stays in arrears
        self.at(max(paid, issued + timedelta(hours=1)), self.pay, bill_id, fen)

    def billed(self, when: datetime, bill: Event) -> None:
        self.both(bill)

    def pay(self, when: datetime, bill_id: str, fen: int) -> None:
        self.both(df.payment(self.account, f"PAY-{bill_id}", when, fen, bill_id=bill_id))

    def delivered(self, when: datetime, reminder_id: str, channel: str, outcome: str) -> None:
        self.record("dunning", self.dunning.feed(df.delivery(self.account, reminder_id, outcome, when, channel=channel)))

    def restored(self, when: datetime, order_id: str) -> None:
        self.record("guard", self.guard.feed(Event(
            derived_id("bench-restored", order_id), "billing.restoration.v1", when,
            {"accountId": self.account, "restorationOrderId": order_id if self.rng.random() < 0.7 else None,
             "completedAt": when, "networkSystem": f"hlr-{self.rng.randint(1, 9):02d}"})))

    def plan_dispute(self, bill_id: str, cycle_start: datetime, issued: datetime, bill_fen: int) -> None:
        rng = self.rng
        ticket = f"TT-{self.account}-{next(self.tickets):02d}"
        # The disputed calls, rated by the guard in the billed cycle.
        calls = [cycle_start + timedelta(days=rng.randint(0, 26), hours=rng.randint(0, 23)) for _ in range(2)]
        for start in calls:
            self.at(start, self.call, start)
        opened = issued + timedelta(days=rng.randint(1, 9), hours=rng.randint(0, 8))
        amount = min(bill_fen, rng.choice((300, 800, 1_500, 4_000, 9_000)))
        self.at(opened, self.open_dispute, ticket, bill_id, amount)
        step = lambda days: opened + timedelta(days=days, hours=rng.randint(0, 8))  # noqa: E731
        roll = rng.random()
        if roll < 0.15:
            self.at(step(0), self.dispute, ticket, "transfer", {"toOwnerId": f"agent-{rng.randint(2, 40)}"})
            self.at(step(1), self.dispute, ticket, "acceptTransfer", {}, "owner")
            roll = rng.random() * 0.5
        if roll < 0.45:
            reply = rng.randint(1, 12)
            self.at(step(reply), self.dispute, ticket, "reply", {"replyText": "checking the records"}, "owner")
            self.plan_resolution(ticket, step(reply + rng.randint(1, 6)), amount)
        elif roll < 0.55:
            self.at(step(rng.randint(0, 4)), self.dispute, ticket, "cancel", {})
        elif roll < 0.75:
            self.plan_resolution(ticket, step(rng.randint(16, 30)), amount)  # after D.REPLY_15D fired
        # else: still open at the end of the horizon (or overdue, if 15 days passed)

    def plan_resolution(self, ticket: str, when: datetime, amount: int) -> None:
        resolution = _pick(self.rng, (("upheld", 30), ("partiallyUpheld", 40), ("rejected", 30)))
        extra = {"resolution": resolution}
        if resolution == "partiallyUpheld":
            extra["creditAmount"] = gf.fen(max(1, amount // 2))
        self.at(when, self.dispute, ticket, "resolve", extra, "owner")
        self.at(when + timedelta(days=self.rng.randint(1, 4)), self.dispute, ticket, "close", {}, "owner")

    def call(self, when: datetime, start: datetime) -> None:
        n = next(self.usages)
        envelopes = self.guard.feed(_renamed(gf.cdr(
            self.account, start=start, seconds=self.rng.randint(30, 900), switch="SW-DISPUTED", seq=n,
            usage_id=f"U-{self.account}-{n}", origin=f"O-{self.account}-{n}"), self.account, next(self.inputs)))
        self.calls += [e["payload"]["usageId"] for e in envelopes if e["decisionType"] == guard_types.CDR_RATED]
        self.record("guard", envelopes)

    def open_dispute(self, when: datetime, ticket: str, bill_id: str, amount: int) -> None:
        self.owners[ticket] = "agent-1"
        items, self.calls = self.calls[-2:], []
        self.record("guard", self.guard.feed(_renamed(gf.dispute(
            self.account, ticket, "open", when, billId=bill_id, disputedItems=items or [f"U-{ticket}"],
            disputedAmount=gf.fen(amount), channel=self.rng.choice(("hotline", "app", "counter"))),
            self.account, next(self.inputs))))

    def dispute(self, when: datetime, ticket: str, action: str, extra: dict, actor: str = "agent-1") -> None:
        if action == "transfer":
            self.owners[ticket] = extra["toOwnerId"]
        actor = self.owners.get(ticket, "agent-1") if actor == "owner" else actor
        self.record("guard", self.guard.feed(_renamed(
            gf.dispute(self.account, ticket, action, when, actor=actor, **extra), self.account, next(self.inputs))))


# --- card outlets: the real cards decider ---------------------------------------------------------

def outlet_life(outlet: str, shape: Shape, rng: random.Random, cards_policy) -> list[Keyed]:
    """An outlet's year: a batch of cards a month, sales, usage, and the odd faulty card."""
    world = cf.World(loaded=cards_policy)
    complaints = itertools.count(1)
    agenda: list = []
    n = itertools.count()
    issued = 0
    for month in range(shape.months):
        month_start = _add_months(shape.start, month)
        size = rng.randint(15, 35)
        agenda.append((month_start + timedelta(hours=9), next(n), "batch", cf.serials(f"CARD-{outlet}", size, issued)))
        issued += size
        for _ in range(rng.randint(10, 30)):
            agenda.append((month_start + timedelta(days=rng.randint(1, 27), hours=rng.randint(9, 20)), next(n), "sale", None))
    heapq.heapify(agenda)
    on_hand: list[str] = []
    out: list[Keyed] = []
    clock = shape.start
    inputs = itertools.count(1)
    feed = lambda event: world.feed(_renamed(event, outlet, next(inputs)))  # noqa: E731
    while agenda:
        when, _, kind, arg = heapq.heappop(agenda)
        if when >= shape.end:
            continue
        if kind == "batch":
            decided = feed(cf.batch(f"BATCH-{arg[0]}", outlet, arg, face=rng.choice((3_000, 5_000, 10_000)),
                                          at=when, expires=when + timedelta(days=720)))
            on_hand.extend(arg)
        elif kind == "sale":
            if not on_hand:
                continue
            serial = on_hand.pop(0)
            decided = feed(cf.activated(serial, outlet, at=when))
            heapq.heappush(agenda, (when + timedelta(days=rng.randint(1, 2)), next(n), "use", serial))
            if rng.random() < 0.08:  # a faulty card: charged without service
                heapq.heappush(agenda, (when + timedelta(days=rng.randint(3, 10)), next(n), "complaint", serial))
        elif kind == "use":
            decided = feed(cf.used(arg, rng.randint(100, 2_000), at=when))
        else:
            decided = feed(cf.complaint(arg, outlet, at=when, complaint_id=f"CMP-{outlet}-{next(complaints):04d}",
                                              charge_related=rng.random() < 0.85, wrongly=rng.randint(50, 500)))
            drawn = {e["payload"].get("newCardSerial") for e in decided}
            on_hand[:] = [s for s in on_hand if s not in drawn]
        for envelope in decided:
            clock = max(clock, parse_rfc3339(envelope["businessTime"]))
            out.append((clock, len(out), envelope))
    return out


# --- the bulk: rated CDRs cloned from the real guard's ---------------------------------------------

def cdr_pool(shape: Shape, proto: gf.Guard, rng: random.Random, size: int = 2_000) -> list[dict]:
    """CdrRated envelopes the real guard decided, over the usage mix."""
    guard = gf.Guard(loaded=proto.loaded)
    guard.states.update(proto.states)
    pool = []
    for i in range(size):
        usage = _pick(rng, USAGE)
        seconds = rng.randint(1, 1800) if usage == "voice" else (0 if usage == "sms" else rng.randint(10, 3600))
        start = shape.start + timedelta(days=rng.randint(0, 27), seconds=rng.randint(0, 86_000))
        out = guard.feed(gf.cdr(f"POOL-{i % 97}", start=start, seconds=seconds, usage=usage,
                                dest=_pick(rng, DESTINATIONS), switch="SW-POOL", seq=i + 1,
                                volume=rng.randint(1_000, 50_000_000) if usage == "data" else None))
        rated = [e for e in out if e["decisionType"] == guard_types.CDR_RATED]
        if rated:
            pool.append(_as_stored(rated[0]))
    return pool


class CdrBulk:
    """Rated CDRs in arrival order over the horizon, each as the guard's one stored decision."""

    def __init__(self, shape: Shape, pool, rng: random.Random, count: int, accounts: list[str], version: str):
        self.shape, self.pool, self.rng, self.count, self.version = shape, pool, rng, count, version
        self.accounts = accounts
        # Some accounts call far more than others.
        self.weights = list(itertools.accumulate(rng.lognormvariate(0, 1) for _ in accounts))
        self.switches = [f"SW-{i:03d}" for i in range(shape.switches)]
        self.sequence = dict.fromkeys(self.switches, 0)

    def __iter__(self) -> Iterator[Keyed]:
        rng, span = self.rng, (self.shape.end - self.shape.start).total_seconds()
        arrivals = sorted(rng.random() * span for _ in range(self.count))
        for n, offset in enumerate(arrivals):
            received = self.shape.start + timedelta(seconds=int(offset))
            for envelope in self.decide(n, received):
                yield received, n, envelope

    def decide(self, n: int, received: datetime) -> list[dict]:
        rng = self.rng
        rated = rng.choice(self.pool)
        body = rated["payload"]
        start = received - timedelta(seconds=body["durationSeconds"] + rng.randint(30, 600))
        account = rng.choices(self.accounts, cum_weights=self.weights)[0]
        switch = rng.choice(self.switches)
        self.sequence[switch] += 1
        usage_id = f"U-{n:09d}"
        cycle = cycle_of(start, SHANGHAI)
        charge = {**body, "usageId": usage_id, "originId": f"O-{switch}-{self.sequence[switch]:09d}",
                  "switchId": switch, "sequenceNumber": self.sequence[switch], "accountId": account, "cycle": cycle,
                  "naturalCycle": cycle,
                  "startDateTime": rfc3339(start), "callingNumber": f"13{rng.randint(0, 10**9 - 1):09d}",
                  "calledNumber": f"1{rng.randint(3, 9)}{rng.randint(0, 10**9 - 1):09d}"}
        event = Event(derived_id("bench-cdr", self.shape.seed, n), "billing.cdr.v1", received, {})
        return decision_envelopes(
            [_decision(rated, charge)], event=event, stream_id=f"guard-account-{account}", service="billing_guard",
            service_version=rated["serviceVersion"], policy_version=self.version)


def _decision(template: dict, payload: dict) -> Decision:
    return Decision(template["decisionType"], tuple(template["ruleIds"]), template["outcome"], payload,
                    tuple(template["reasonCodes"]), stream_id=f"guard-account-{payload['accountId']}")


# --- the whole history ----------------------------------------------------------------------------

@dataclass
class History:
    """The decisions in log order, and what they are made of."""
    decisions: Iterator[dict]
    counts: dict


_WORLD: tuple = ()  # (shape, tariff-ready guard, dunning policy, cards policy), inherited by forked workers


def _life(name: str) -> list[Keyed]:
    shape, proto, dunning_policy, cards_policy = _WORLD
    rng = random.Random(f"{shape.seed}-{name}")  # per life, so the result does not depend on the workers
    if name.startswith("OUTLET-"):
        return outlet_life(name, shape, rng, cards_policy)
    return AccountLife(name, shape, rng, proto, dunning_policy).run()


def _life_json(name: str) -> bytes:
    # JSON crosses the process boundary several times faster than pickled nested dicts.
    return orjson.dumps([(clock, envelope) for clock, _, envelope in _life(name)])


def _lives(names: list[str]) -> list[list[Keyed]]:
    # The deciders are pure Python: one process per core (forked, so the policies come along).
    workers = os.cpu_count() or 1
    if workers < 2 or len(names) < 100:
        return [_life(name) for name in names]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return [[(datetime.fromisoformat(clock), n, envelope) for n, (clock, envelope) in enumerate(orjson.loads(data))]
                for data in pool.imap(_life_json, names, chunksize=20)]


def build(shape: Shape) -> History:
    global _WORLD
    proto = _guard_with_tariff(shape.start)
    _WORLD = (shape, proto, df.policy(), cf.policy())
    accounts = [f"ACC-{i:06d}" for i in range(shape.accounts)]
    lives = [[(parse_rfc3339(d["businessTime"]), 0, _as_stored(d)) for d in proto.log]]
    lives += _lives(accounts + [f"OUTLET-{o:03d}" for o in range(shape.outlets)])
    in_lives = sum(len(life) for life in lives)
    rated = max(0, shape.events - in_lives)
    rng = random.Random(shape.seed)
    bulk = CdrBulk(shape, cdr_pool(shape, proto, rng), rng, rated, accounts, proto.loaded.version)
    merged = heapq.merge(iter(bulk), *lives, key=lambda k: k[0])
    return History((envelope for _, _, envelope in merged),
                   {"in_lives": in_lives, "rated_cdrs": rated, "accounts": shape.accounts,
                    "outlets": shape.outlets, "months": shape.months})

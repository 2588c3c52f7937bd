"""Wires the guard's pure rules into the shared MultiStreamDecider shape.

Streams:
- guard-account-<account>: charges, dedup keys, cycles, CP1 data, disputes (one writer: the
  account's partition);
- guard-tariffs: the whole tariff catalogue. A CDR must be rated with the plan of its account,
  which is only known once the account is loaded, so the CDR loads the catalogue rather than one
  tariff. It is appended rarely, so the state cache keeps it hot and CDRs only read it;
- guard-switch-<switch>: the switch's sequence high-water mark and open gaps (CP3.SEQUENCE_GAP).
  Sequence numbers are per switch, so only a per-switch view can see a gap; CDRs of one switch
  reach several partitions, so two workers may write it at once and one batch retries. The
  state is a mark plus open gaps, so a retry reloads little (see the service README note);
- guard-works: every planned work (CP5), read by each CDR for its cutover windows;
- claim:cdr:<switch>|<origin>: CP3.DEDUP's unique claim, the usage id of a CDR's first copy, kept
  in the store's claims table rather than in the account state (which would grow with every CDR);
- guard-account-<account>#charges: a view of the account stream with every charge's body, read
  (never cached) only by disputes, so the cached account state stays small.
"""
from __future__ import annotations

from schemas.registry import partition_key
from services.common.runtime.claims import claim_id
from services.common.stream_views import view_name, view_of

from .domain.account import AccountState, claims_made, dedup_key, evolve_billing
from .domain.charge_history import VIEW as CHARGES_VIEW, ChargeHistory, evolve_charges
from .domain.customer_data import decide_change, evolve_customer
from .domain.disputes import DISPUTE_TYPES, REPLY_TIMER, decide_dispute, evolve_dispute, on_reply_timer
from .domain.offline_billing import decide_bill, decide_cdr
from .domain.planned_works import WorksState, decide_work, evolve_works
from .domain.sequences import GAP_TIMER, SwitchState, evolve_switch, on_gap_timer
from .domain.tariff_changes import decide_tariff, evolve_catalogue
from .domain.tariffs import Catalogue
from .domain import suspension, vip_approval

INPUT_TOPICS = (
    "billing.cdr.v1", "billing.tariff.v1", "billing.customer.v1", "billing.cutover.v1",
    "billing.dispute.v1", "billing.bill.v1", "billing.payment.v1", "billing.restoration.v1", "billing.approval.v1",
    "dunning.decisions.v1",
)
TIMER = "wuguan.timer.v1"
SUSPENSION_REQUEST = "guard.suspensionRequest"  # the request shape, for callers other than dunning
DUNNING = "dunning.decisions.v1"


def _dunning_account(event) -> str:
    # Every dunning decision the guard acts on names its account; others land on a stream never written.
    return event.payload.get("payload", {}).get("accountId") or "none"
TARIFFS = "guard-tariffs"
WORKS = "guard-works"


def account_stream(account_id: str) -> str:
    return f"guard-account-{account_id}"


def cdr_claim(cdr: dict) -> str:
    return claim_id(dedup_key(cdr["switchId"], cdr["originId"]))


def charges_view(account_id: str) -> str:
    return view_of(account_stream(account_id), CHARGES_VIEW)


def switch_stream(switch_id: str) -> str:
    return f"guard-switch-{switch_id}"


class GuardDecider:
    service = "billing_guard"
    input_topics = INPUT_TOPICS
    decision_types_consumed = frozenset({"dunning.SuspensionRequested"})  # of dunning's decisions

    def stream_ids(self, event) -> tuple[str, ...]:
        kind, p = event.event_type, event.payload
        if kind == "billing.cdr.v1":
            return (account_stream(p["accountId"]), TARIFFS, switch_stream(p["switchId"]), WORKS, cdr_claim(p))
        if kind == "billing.tariff.v1":
            return (TARIFFS,)
        if kind == "billing.cutover.v1":
            return (WORKS,)
        if kind == "billing.dispute.v1":
            return (account_stream(p["accountId"]), charges_view(p["accountId"]), TARIFFS, WORKS)
        if kind == DUNNING:
            # Only suspension requests concern the guard; every other dunning decision is
            # recorded as processed without loading a stream.
            if p["decisionType"] != "dunning.SuspensionRequested":
                return ()
            return (account_stream(_dunning_account(event)),)
        return (account_stream(p["accountId"]),)

    def partition_key(self, event) -> str:
        if event.event_type == TIMER:
            return event.payload["data"].get("accountId") or event.payload["streamId"]
        if event.event_type == DUNNING:
            return _dunning_account(event)
        return partition_key(event.event_type, event.payload)

    def claims_made(self, decision: dict) -> list[tuple[str, str]]:
        return claims_made(decision)

    def initial_state(self, stream_id: str):
        if stream_id == TARIFFS:
            return Catalogue()
        if stream_id == WORKS:
            return WorksState()
        if stream_id.startswith("guard-switch-"):
            return SwitchState()
        if view_name(stream_id) == CHARGES_VIEW:
            return ChargeHistory()
        return AccountState()

    def evolve(self, state, decision: dict):
        if isinstance(state, Catalogue):
            return evolve_catalogue(state, decision)
        if isinstance(state, SwitchState):
            return evolve_switch(state, decision)
        if isinstance(state, WorksState):
            return evolve_works(state, decision)
        if isinstance(state, ChargeHistory):
            return evolve_charges(state, decision)
        if decision["decisionType"] in DISPUTE_TYPES:
            return evolve_dispute(state, decision)
        if decision["decisionType"] in suspension.TYPES:
            return vip_approval.evolve_approval(suspension.evolve_suspension(state, decision), decision)
        if decision["decisionType"] in vip_approval.TYPES:
            return vip_approval.evolve_approval(state, decision)
        for fold in (evolve_billing, evolve_customer):
            folded = fold(state, decision)
            if folded is not None:
                return folded
        return state

    def decide(self, states: dict, event, policy) -> list:
        kind, p = event.event_type, event.payload
        if kind == TIMER:
            (stream_id, state), = states.items()
            if p["kind"] == GAP_TIMER:
                return on_gap_timer(state, event, stream_id)
            if p["kind"] == REPLY_TIMER:
                return on_reply_timer(state, event)
            if p["kind"] == vip_approval.APPROVAL_TIMER:
                return vip_approval.on_timeout(state, event, policy)
            return suspension.on_timer(state, event)
        if kind == "billing.cdr.v1":
            return decide_cdr(states[account_stream(p["accountId"])], states[TARIFFS],
                              states[switch_stream(p["switchId"])], states[WORKS], states[cdr_claim(p)], event, policy,
                              switch_stream(p["switchId"]))
        if kind == "billing.tariff.v1":
            return decide_tariff(states[TARIFFS], event, policy, TARIFFS)
        if kind == "billing.cutover.v1":
            return decide_work(states[WORKS], event, policy)
        if kind == "billing.dispute.v1":
            return decide_dispute(states[account_stream(p["accountId"])], states[charges_view(p["accountId"])],
                                  states[TARIFFS], states[WORKS], event, policy)
        if kind == "billing.customer.v1":
            return decide_change(states[account_stream(p["accountId"])], event, policy)
        if kind == "billing.bill.v1":
            return decide_bill(states[account_stream(p["accountId"])], event, policy)
        if kind == "billing.payment.v1":
            return suspension.decide_payment(states[account_stream(p["accountId"])], event, policy)
        if kind == "billing.restoration.v1":
            return suspension.decide_restoration(states[account_stream(p["accountId"])], event)
        if kind == DUNNING:
            if p["decisionType"] != "dunning.SuspensionRequested":
                return []
            return vip_approval.decide_request(states[account_stream(_dunning_account(event))],
                                               suspension.from_dunning(p), event, policy)
        if kind == SUSPENSION_REQUEST:
            return vip_approval.decide_request(states[account_stream(p["accountId"])], suspension.parse_request(p), event,
                                               policy)
        if kind == "billing.approval.v1":
            return vip_approval.decide_answer(states[account_stream(p["accountId"])], event, policy)
        return []

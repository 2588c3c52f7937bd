"""The adapter between the runtime and the guard's domain (MultiStreamDecider): which streams an
input reads and how they are named, its partition, the claims a decision makes, each stream's
initial state. What to decide, and how a decision folds into a state, is the domain's
(domain/decide.py, domain/evolve.py).

Streams:
- guard-account-<account>: charges, dedup keys, cycles, CP1 data, disputes (one writer: the
  account's partition);
- guard-tariffs: the whole tariff catalogue. A CDR must be rated with the plan of its account,
  which is only known once the account is loaded, so the CDR loads the catalogue rather than one
  tariff. It is appended rarely, so the state cache keeps it hot and CDRs only read it;
- guard-switch-<switch>: the switch's sequence high-water mark and open gaps (CP3.SEQUENCE_GAP).
  Sequence numbers are per switch, so only a per-switch view can see a gap; CDRs of one switch
  reach several partitions, so two workers may write it at once and one batch retries. The
  state is a mark plus open gaps, so a retry reloads little;
- guard-works: every planned work (CP5), read by each CDR for its cutover windows;
- claim:cdr:<switch>|<origin>: CP3.DEDUP's unique claim, the usage id of a CDR's first copy, kept
  in the store's claims table rather than in the account state (which would grow with every CDR);
- guard-account-<account>#charges: a view of the account stream with every charge's body, read
  (never cached) only by disputes, so the cached account state stays small.
"""
from __future__ import annotations

from schemas.decision_types import dunning as dunning_types
from schemas.registry import partition_key
from services.common.runtime.claims import claim_id
from services.common.stream_views import view_name, view_of

from .domain import decide as rules
from .domain.account import AccountState, claims_made, dedup_key
from .domain.charge_history import VIEW as CHARGES_VIEW, ChargeHistory
from .domain.decide import DUNNING, TIMER, StreamNames, dunning_account
from .domain.evolve import evolve
from .domain.planned_works import WorksState
from .domain.sequences import SwitchState
from .domain.tariffs import Catalogue

INPUT_TOPICS = (
    "billing.cdr.v1", "billing.tariff.v1", "billing.customer.v1", "billing.cutover.v1",
    "billing.dispute.v1", "billing.bill.v1", "billing.payment.v1", "billing.restoration.v1", "billing.approval.v1",
    DUNNING,
)
TARIFFS = "guard-tariffs"
WORKS = "guard-works"
SWITCH_PREFIX = "guard-switch-"


def account_stream(account_id: str) -> str:
    return f"guard-account-{account_id}"


def cdr_claim(cdr: dict) -> str:
    return claim_id(dedup_key(cdr["switchId"], cdr["originId"]))


def charges_view(account_id: str) -> str:
    return view_of(account_stream(account_id), CHARGES_VIEW)


def switch_stream(switch_id: str) -> str:
    return f"{SWITCH_PREFIX}{switch_id}"


STREAMS = StreamNames(account=account_stream, switch=switch_stream, charges=charges_view, cdr_claim=cdr_claim,
                      tariffs=TARIFFS, works=WORKS)


def _cdr_streams(event) -> tuple[str, ...]:
    p = event.payload
    return (account_stream(p["accountId"]), TARIFFS, switch_stream(p["switchId"]), WORKS, cdr_claim(p))


def _tariff_streams(event) -> tuple[str, ...]:
    return (TARIFFS,)


def _cutover_streams(event) -> tuple[str, ...]:
    return (WORKS,)


def _dispute_streams(event) -> tuple[str, ...]:
    account = event.payload["accountId"]
    return (account_stream(account), charges_view(account), TARIFFS, WORKS)


def _dunning_streams(event) -> tuple[str, ...]:
    # Only suspension requests concern the guard; every other dunning decision is recorded as
    # processed without loading a stream.
    if event.payload["decisionType"] != dunning_types.SUSPENSION_REQUESTED:
        return ()
    return (account_stream(dunning_account(event)),)


# The streams an input reads, by input type; any other input reads its account's stream. The
# first is the one its decisions go to unless a decision names another.
_STREAMS_READ = {
    "billing.cdr.v1": _cdr_streams,
    "billing.tariff.v1": _tariff_streams,
    "billing.cutover.v1": _cutover_streams,
    "billing.dispute.v1": _dispute_streams,
    DUNNING: _dunning_streams,
}


def _account_streams(event) -> tuple[str, ...]:
    return (account_stream(event.payload["accountId"]),)


class GuardDecider:
    service = "billing_guard"
    input_topics = INPUT_TOPICS
    decision_types_consumed = frozenset({dunning_types.SUSPENSION_REQUESTED})  # of dunning's decisions

    def stream_ids(self, event) -> tuple[str, ...]:
        return _STREAMS_READ.get(event.event_type, _account_streams)(event)

    def partition_key(self, event) -> str:
        if event.event_type == TIMER:
            return event.payload["data"].get("accountId") or event.payload["streamId"]
        if event.event_type == DUNNING:
            return dunning_account(event)
        return partition_key(event.event_type, event.payload)

    def claims_made(self, decision: dict) -> list[tuple[str, str]]:
        return claims_made(decision)

    def initial_state(self, stream_id: str):
        if stream_id == TARIFFS:
            return Catalogue()
        if stream_id == WORKS:
            return WorksState()
        if stream_id.startswith(SWITCH_PREFIX):
            return SwitchState()
        if view_name(stream_id) == CHARGES_VIEW:
            return ChargeHistory()
        return AccountState()

    def evolve(self, state, decision: dict):
        return evolve(state, decision)

    def decide(self, states: dict, event, policy) -> list:
        return rules.decide(states, event, policy, STREAMS)

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
  Sequence numbers are per switch, so only a per-switch view can see a gap; but CDRs are keyed
  by account, so a switch's CDRs reach every partition. A CDR therefore does not read it: the
  relay republishes each CDR's charge decision keyed by switch on the guard's repartition topic
  (schemas.registry.REPARTITION_TOPICS, also an input here), and that note is the stream's only
  writer, the owner of the switch's partition of that topic. It is a snapshot stream
  (snapshot_codec): a number in sequence changes its state without storing a decision;
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
from .domain.decide import DUNNING, SWITCH_NOTES, TIMER, StreamNames, dunning_account, note_switch
from .domain.evolve import evolve
from .domain.planned_works import WorksState
from .domain.sequences import SWITCH_CODEC, SwitchCodec, SwitchState
from .domain.tariffs import Catalogue

INPUT_TOPICS = (
    "billing.cdr.v1", "billing.tariff.v1", "billing.customer.v1", "billing.cutover.v1",
    "billing.dispute.v1", "billing.bill.v1", "billing.payment.v1", "billing.restoration.v1", "billing.approval.v1",
    DUNNING, SWITCH_NOTES,
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
    return (account_stream(p["accountId"]), TARIFFS, WORKS, cdr_claim(p))


def _note_streams(event) -> tuple[str, ...]:
    return (switch_stream(note_switch(event)),)


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
    SWITCH_NOTES: _note_streams,
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
            data = event.payload["data"]
            # A gap timer is keyed by its switch, like the notes that set it (Timer.key).
            return data.get("accountId") or data.get("switchId") or event.payload["streamId"]
        if event.event_type == DUNNING:
            return dunning_account(event)
        if event.event_type == SWITCH_NOTES:
            return note_switch(event)
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

    def snapshot_codec(self, stream_id: str) -> SwitchCodec | None:
        """A switch's stream is kept as a snapshot (Decision.stored=False changes only it); every
        other stream is folded from its stored decisions."""
        return SWITCH_CODEC if stream_id.startswith(SWITCH_PREFIX) else None

    def evolve(self, state, decision: dict):
        return evolve(state, decision)

    def decide(self, states: dict, event, policy) -> list:
        return rules.decide(states, event, policy, STREAMS)

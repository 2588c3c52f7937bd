"""One billing account as the guard sees it, folded from its own decisions (evolve).

Collections are copied on change, never mutated: the runtime may retry a batch with the
states it had cached, so a state object must never change after it was produced.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.frozen import evolved
from services.common.timefmt import parse_rfc3339

from schemas.decision_types.guard import (
    BILL_CYCLE_CLOSED, CDR_RATED, CDR_UNRATED, DUPLICATE_CDR_SUPPRESSED, HUGE_FEE_ALERT, STALE_CDR_HELD,
    USAGE_CYCLE_CLOSED,
)



@dataclass(frozen=True)
class AccountState:
    fields: dict = field(default_factory=dict)  # CP1 field -> current value
    tariff_plans: tuple = ()  # (effective from, tariff id), in acceptance order
    duplicates: dict = field(default_factory=dict)  # usage id of a suppressed copy -> usage id of the first
    cycle_totals: dict = field(default_factory=dict)  # cycle -> fen charged
    free_used: dict = field(default_factory=dict)  # cycle -> free voice seconds used
    closed: dict = field(default_factory=dict)  # cycle -> bill amount (fen), as billing.bill.v1 stated it
    watermark: datetime | None = None  # latest call start among the account's CDRs (CP3.LATE)
    usage_closed: frozenset = frozenset()  # cycles closed by the watermark (CP3.LATE)
    bills: dict = field(default_factory=dict)  # bill id -> {"cycle", "amountMinor", "paymentDueDate"}
    huge_alerted: frozenset = frozenset()
    audit: tuple = ()  # (cycle, decision id, decision type, rule ids) of checkpoint decisions
    disputes: dict = field(default_factory=dict)  # ticket id -> Dispute
    extra: dict = field(default_factory=dict)  # per-rule state of later checkpoints (CP4)

    def tariff_at(self, at: datetime, default: str) -> str:
        """CP1-accepted tariff plan in force at `at`, else the policy's default tariff."""
        chosen = None
        for effective, tariff_id in self.tariff_plans:
            if effective <= at and (chosen is None or effective >= chosen[0]):
                chosen = (effective, tariff_id)
        return chosen[1] if chosen else default

    def closed_cycles(self) -> list[str]:
        """Cycles closed by the watermark, oldest first."""
        return sorted(self.usage_closed)


def dedup_key(switch_id: str, origin_id: str) -> str:
    """CP3.DEDUP's unique claim for a CDR: its state is the usage id of the first copy. Claims live
    in the store (services/common/runtime/claims.py), not in this state, which would otherwise
    grow with every CDR. "|" cannot occur in an id (schemas.fields.ID_PATTERN)."""
    return f"cdr:{switch_id}|{origin_id}"


def claims_made(decision: dict) -> list[tuple[str, str]]:
    """The first copy of a CDR claims its key, whatever became of it (charged, held or unrated)."""
    if decision["decisionType"] in (CDR_RATED, STALE_CDR_HELD, CDR_UNRATED):
        body = decision["payload"]
        return [(dedup_key(body["switchId"], body["originId"]), body["usageId"])]
    return []


def _audit(state: AccountState, decision: dict, cycle: str | None) -> tuple:
    return state.audit + ((cycle, decision["decisionId"], decision["decisionType"], tuple(decision["ruleIds"])),)


def _watermarked(state: AccountState, body: dict) -> AccountState:
    """A CDR accepted for the account (charged or held): its call start, if later, is the new watermark (CP3.LATE)."""
    start = parse_rfc3339(body["startDateTime"])
    if state.watermark is not None and start <= state.watermark:
        return state
    return evolved(state, watermark=start)


def _rated(state: AccountState, decision: dict) -> AccountState:
    """CP2.TRACEABLE, CP3.LATE: a charge adds to its cycle's total and free allowance used."""
    body = decision["payload"]
    state = _watermarked(state, body)
    cycle = body["cycle"]
    state = evolved(
        state,
        cycle_totals={**state.cycle_totals, cycle: state.cycle_totals.get(cycle, 0) + body["amountMinor"]},
        free_used={**state.free_used, cycle: state.free_used.get(cycle, 0) + body["freeSecondsUsed"]}
        if body["freeSecondsUsed"] else state.free_used,
    )
    if body["flags"]:
        state = evolved(state, audit=_audit(state, decision, cycle))
    return state


def _held(state: AccountState, decision: dict) -> AccountState:
    """CP3.STALE, CP2.EFFECTIVE_DATING: a CDR held for review moves the watermark and is audited."""
    body = decision["payload"]
    state = _watermarked(state, body)
    return evolved(state, audit=_audit(state, decision, body.get("cycle")))


def _duplicate(state: AccountState, decision: dict) -> AccountState:
    """CP3.DEDUP: a suppressed copy remembers its original (D.AUTO_CREDIT credits a charged one)."""
    body = decision["payload"]
    return evolved(state, duplicates={**state.duplicates, body["usageId"]: body["originalUsageId"]},
                   audit=_audit(state, decision, body.get("cycle")))


def _huge_fee(state: AccountState, decision: dict) -> AccountState:
    """CP3.HUGE_FEE: one alert per cycle."""
    body = decision["payload"]
    return evolved(state, huge_alerted=state.huge_alerted | {body["cycle"]}, audit=_audit(state, decision, body["cycle"]))


def _usage_closed(state: AccountState, decision: dict) -> AccountState:
    """CP3.LATE: the watermark closed the cycle."""
    return evolved(state, usage_closed=state.usage_closed | {decision["payload"]["cycle"]})


def _bill_recorded(state: AccountState, decision: dict) -> AccountState:
    """CP4.OVERDUE_30: the bill its checks and disputes read."""
    body = decision["payload"]
    return evolved(
        state,
        closed={**state.closed, body["cycle"]: body["amountMinor"]},
        bills={**state.bills, body["billId"]: {"cycle": body["cycle"], "amountMinor": body["amountMinor"],
                                               "paymentDueDate": parse_rfc3339(body["paymentDueDate"])}},
    )


# The CP3 part of the account fold (and the bills CP4 reads), by decision type.
BILLING_FOLDS = {
    CDR_RATED: _rated,
    STALE_CDR_HELD: _held,
    CDR_UNRATED: _held,
    DUPLICATE_CDR_SUPPRESSED: _duplicate,
    HUGE_FEE_ALERT: _huge_fee,
    USAGE_CYCLE_CLOSED: _usage_closed,
    BILL_CYCLE_CLOSED: _bill_recorded,
}

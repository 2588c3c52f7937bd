"""Offline billing checkpoint (CP3) and rating of every CDR (CP2.EFFECTIVE_DATING, CP2.TRACEABLE).

One CDR stores one decision: the account's charge (CdrRated, or CdrUnrated / StaleCdrHeld when
it was not charged; DuplicateCdrSuppressed for a second copy), plus, once per cycle, the huge-fee
alert and the closing of the cycles its call start moves the account's watermark past
(cycle_closing.py). The charge carries the CDR's switchId and sequenceNumber: CP3.SEQUENCE_GAP is
judged per switch, which the account's partition cannot see, so the relay republishes the charge
keyed by switch (schemas.registry.REPARTITION_TOPICS) and the switch's owner judges its sequence
from it (sequences.py). A suppressed copy is not routed: CP3.DEDUP has already decided it.
"""
from __future__ import annotations

from schemas.decision_types.guard import (
    BILL_CYCLE_CLOSED, CDR_RATED, CDR_UNRATED, DUPLICATE_CDR_SUPPRESSED, HUGE_FEE_ALERT, STALE_CDR_HELD,
)
from services.common.decider import Decision, Rejected
from services.common.timefmt import rfc3339

from .account import AccountState
from .cycle_closing import baseline_cycles, closing_decisions, cycles_closing, is_closed
from .cycles import cycle_of, months_before
from .planned_works import WorksState
from .policy import GuardPolicy
from .rating import ROUNDING, rate_with
from .tariffs import Catalogue


def sanity_reasons(p: dict, received_at, policy: GuardPolicy) -> list[str]:
    reasons = []
    if p["durationSeconds"] < 0:
        reasons.append("NEGATIVE_DURATION")
    if p["durationSeconds"] > policy.max_duration_seconds:
        reasons.append("ABSURD_DURATION")
    if p["endDateTime"] < p["startDateTime"]:
        reasons.append("END_BEFORE_START")
    if p["startDateTime"] > received_at + policy.clock_skew:
        reasons.append("START_IN_FUTURE")
    return reasons


def _ids(p: dict) -> dict:
    # sequenceNumber: the switch's owner reads it from the routed charge (CP3.SEQUENCE_GAP).
    return {"usageId": p["usageId"], "switchId": p["switchId"], "originId": p["originId"],
            "sequenceNumber": p["sequenceNumber"]}


def huge_fee(state: AccountState, cycle: str, new_total: int, baseline: list[str], policy: GuardPolicy,
             account_id: str, late: bool = False) -> Decision | None:
    """CP3.HUGE_FEE: > factor x average of the N calendar cycles before (cycle_closing.baseline_cycles);
    once per cycle, whether the open cycle's charges or a late adjustment (CP3.LATE) to a closed
    one crossed the line. Both sides are charges by call start (AccountState.cycle_totals), never a
    bill's amount, which arrives on another topic in no fixed order with the CDRs."""
    if not baseline or cycle in state.huge_alerted:
        return None
    baseline_sum = sum(state.cycle_totals.get(c, 0) for c in baseline)
    # A zero baseline is no baseline: any first charge would otherwise be "infinitely" abnormal.
    if baseline_sum <= 0:
        return None
    # Compare total x n > factor x sum: exact in integers, no rounded average.
    if new_total * len(baseline) <= policy.huge_fee_factor * baseline_sum:
        return None
    return Decision(
        HUGE_FEE_ALERT, ("CP3.HUGE_FEE", "CP3.LATE") if late else ("CP3.HUGE_FEE",), "notifyCustomer",
        {"accountId": account_id, "cycle": cycle, "cycleChargesMinor": new_total,
         "baselineCycles": baseline, "baselineAverageMinor": baseline_sum // len(baseline),
         "factor": policy.huge_fee_factor, "notifyCustomerAt": "immediately", "lateAdjustment": late},
        ("CHARGES_EXCEED_FACTOR_X_AVERAGE", *(("LATE_ADJUSTMENT_CROSSED_THRESHOLD",) if late else ())),
    )


def decide_cdr(state: AccountState, catalogue: Catalogue, works: WorksState, first_copy: str | None, event,
               policy: GuardPolicy) -> list[Decision]:
    """`first_copy`: the usage id that claimed this CDR's dedup key, if any (CP3.DEDUP)."""
    p = event.payload
    received = event.event_time
    insane = sanity_reasons(p, received, policy)
    if insane:
        # Codes only: the message reaches the DLQ and logs, so it carries no values (A.PRIVACY).
        raise Rejected("CP3.SANITY", "CDR failed sanity checks: " + ", ".join(insane))
    start = p["startDateTime"]
    cycle = cycle_of(start, policy.timezone)
    if first_copy is not None:
        return [Decision(DUPLICATE_CDR_SUPPRESSED, ("CP3.DEDUP",), "suppressed",
                         {**_ids(p), "accountId": p["accountId"], "originalUsageId": first_copy, "cycle": cycle},
                         ("DUPLICATE_SWITCH_ORIGIN_ID",))]
    closing = cycles_closing(state, start, policy)
    decisions = closing_decisions(state, closing, start, policy, p["accountId"])
    if start < months_before(received, policy.stale_after_months):
        decisions.insert(len(closing), Decision(
            STALE_CDR_HELD, ("CP3.STALE",), "heldForReview",
            {**_ids(p), "accountId": p["accountId"], "cycle": cycle, "startDateTime": rfc3339(start),
             "staleAfterMonths": policy.stale_after_months}, ("OLDER_THAN_DISPUTE_WINDOW",)))
        return decisions
    charge = _rate(state, catalogue, works, p, cycle, policy)
    decisions.insert(len(closing), charge)
    if charge.decision_type != CDR_RATED:
        return decisions
    new_total = state.cycle_totals.get(cycle, 0) + charge.payload["amountMinor"]
    alert = huge_fee(state, cycle, new_total, baseline_cycles(state, cycle, start, policy), policy, p["accountId"],
                     late="LATE_ADJUSTMENT" in charge.payload["flags"])
    if alert is not None:
        decisions.append(alert)
    return decisions


def _rate(state: AccountState, catalogue: Catalogue, works: WorksState, p: dict, cycle: str,
          policy: GuardPolicy) -> Decision:
    """The CDR's charge in the cycle of its call start; a closed cycle's is a late adjustment."""
    start = p["startDateTime"]
    tariff_id = state.tariff_at(start, policy.default_tariff_id)
    version = catalogue.in_force(tariff_id, start)
    free_left = 0
    if version is not None:
        free_left = max(0, version.free_allowance_seconds - state.free_used.get(cycle, 0))
    rated = None if version is None else rate_with(
        version, p["usageType"], p["destinationClass"], p["durationSeconds"], p.get("volumeBytes") or 0,
        start, policy.timezone, free_left)
    if rated is None:
        reason = "NO_TARIFF_VERSION_IN_FORCE" if version is None else "NO_RATE_FOR_USAGE"
        return Decision(CDR_UNRATED, ("CP2.EFFECTIVE_DATING",), "heldForReview",
                        {**_ids(p), "accountId": p["accountId"], "cycle": cycle, "tariffId": tariff_id,
                         "tariffVersion": version.version if version else None,
                         "startDateTime": rfc3339(start)}, (reason,))
    flags, rule_ids, reasons = [], ["CP2.EFFECTIVE_DATING", "CP2.TRACEABLE"], []
    late = is_closed(state, cycle, policy)
    if late:
        flags.append("LATE_ADJUSTMENT")
        rule_ids.append("CP3.LATE")
        reasons.append("CYCLE_CLOSED_LATE_ADJUSTMENT")
    windows = works.windows_covering(p["switchId"], p.get("areaCode"), start)
    if windows:
        flags.append("IN_CUTOVER_WINDOW")
        rule_ids.append("CP5.WINDOW_CDRS")
        reasons.append("CUTOVER_WINDOW_VERIFY_BEFORE_BILLING")
    # A late adjustment says so even inside a cutover window; the window shows in its flags.
    outcome = "lateAdjustment" if late else ("flaggedForVerification" if windows else "charged")
    return Decision(CDR_RATED, tuple(rule_ids), outcome,
                    _charge_body(p, cycle, tariff_id, version, rated, flags, windows),
                    tuple(reasons))


def _charge_body(p: dict, cycle: str, tariff_id: str, version, rated, flags: list, windows: list) -> dict:
    return {
        **_ids(p),
        "accountId": p["accountId"],
        "cycle": cycle,
        # Always the cycle of the call start (CP3.LATE books late usage to its own cycle); kept
        # for readers of decisions made when late usage was deferred to the next cycle.
        "naturalCycle": cycle,
        "startDateTime": rfc3339(p["startDateTime"]),
        "usageType": p["usageType"],
        "destinationClass": p["destinationClass"],
        "durationSeconds": p["durationSeconds"],
        "volumeBytes": p.get("volumeBytes") or 0,
        # Full numbers are kept for the account owner's own itemized bill (D.ITEMIZED); every
        # other human-facing view masks them (masking.mask_number).
        "callingNumber": p["callingNumber"],
        "calledNumber": p["calledNumber"],
        "tariffId": tariff_id,
        "tariffVersion": version.version,
        "amountMinor": rated.amount,
        "billedSeconds": rated.billed_seconds,
        "freeSecondsUsed": rated.free_seconds_used,
        "rateApplied": rated.rate_applied,
        "connectFeeMinor": rated.connect_fee,
        "capped": rated.capped,
        "rounding": ROUNDING,
        "flags": flags,
        "workIds": windows,
    }


def decide_bill(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    p = event.payload
    if p["billId"] in state.bills:
        return []  # a re-sent bill with a known id changes nothing
    cycle = cycle_of(p["billingPeriod"]["startDateTime"], policy.timezone)
    # The bill is recorded for CP4 and disputes; it closes no usage cycle (cycles.py), and it
    # states no guard total, which would depend on how many CDRs happened to arrive first.
    return [Decision(BILL_CYCLE_CLOSED, ("CP4.OVERDUE_30",), "closed",
                     {"accountId": p["accountId"], "billId": p["billId"], "cycle": cycle,
                      "amountMinor": p["amountDue"]["amountMinor"],
                      "paymentDueDate": rfc3339(p["paymentDueDate"])})]

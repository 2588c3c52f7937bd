"""Offline billing checkpoint (CP3) and rating of every CDR (CP2.EFFECTIVE_DATING, CP2.TRACEABLE).

One CDR costs at most three small decisions: the account's charge (or why it was not charged),
the switch's sequence record, and, once per cycle, the huge-fee alert.
"""
from __future__ import annotations

from services.common.decider import Decision, Rejected
from services.common.timefmt import rfc3339

from . import account as acc
from .account import AccountState
from .cycles import cycle_of, months_before, next_cycle
from .planned_works import WorksState
from .policy import GuardPolicy
from .rating import ROUNDING, rate_with
from .sequences import SwitchState, decide_sequence
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
    return {"usageId": p["usageId"], "switchId": p["switchId"], "originId": p["originId"]}


def billed_cycle(state: AccountState, natural: str) -> tuple[str, bool]:
    """CP3.LATE: usage of a closed cycle goes to the cycle after the latest closed one."""
    latest = state.latest_closed()
    if latest is not None and natural <= latest:
        return next_cycle(latest), True
    return natural, False


def huge_fee(state: AccountState, cycle: str, new_total: int, policy: GuardPolicy, account_id: str) -> Decision | None:
    """CP3.HUGE_FEE: > factor x average of up to N previous closed cycles; once per cycle."""
    # No closed cycle is no baseline (most accounts, most of the time): skip the sort below.
    if not state.closed or cycle in state.huge_alerted:
        return None
    previous = sorted(c for c in state.closed if c < cycle)[-policy.huge_fee_baseline_cycles:]
    baseline_sum = sum(state.closed[c] for c in previous)
    # A zero baseline is no baseline: any first charge would otherwise be "infinitely" abnormal.
    if not previous or baseline_sum <= 0:
        return None
    # Compare total x n > factor x sum: exact in integers, no rounded average.
    if new_total * len(previous) <= policy.huge_fee_factor * baseline_sum:
        return None
    return Decision(
        acc.HUGE_FEE, ("CP3.HUGE_FEE",), "notifyCustomer",
        {"accountId": account_id, "cycle": cycle, "cycleChargesMinor": new_total,
         "baselineCycles": previous, "baselineAverageMinor": baseline_sum // len(previous),
         "factor": policy.huge_fee_factor, "notifyCustomerAt": "immediately"},
        ("CHARGES_EXCEED_FACTOR_X_AVERAGE",),
    )


def decide_cdr(state: AccountState, catalogue: Catalogue, switch: SwitchState, works: WorksState,
               first_copy: str | None, event, policy: GuardPolicy, switch_stream: str) -> list[Decision]:
    """`first_copy`: the usage id that claimed this CDR's dedup key, if any (CP3.DEDUP)."""
    p = event.payload
    received = event.event_time
    insane = sanity_reasons(p, received, policy)
    if insane:
        # Codes only: the message reaches the DLQ and logs, so it carries no values (A.PRIVACY).
        raise Rejected("CP3.SANITY", "CDR failed sanity checks: " + ", ".join(insane))
    start = p["startDateTime"]
    natural = cycle_of(start, policy.timezone)
    if first_copy is not None:
        return [Decision(acc.DUPLICATE, ("CP3.DEDUP",), "suppressed",
                         {**_ids(p), "accountId": p["accountId"], "originalUsageId": first_copy, "cycle": natural},
                         ("DUPLICATE_SWITCH_ORIGIN_ID",))]
    decisions = [decide_sequence(switch, event, policy, switch_stream)]
    if start < months_before(received, policy.stale_after_months):
        decisions.insert(0, Decision(acc.STALE, ("CP3.STALE",), "heldForReview",
                                     {**_ids(p), "accountId": p["accountId"], "cycle": natural,
                                      "startDateTime": rfc3339(start), "staleAfterMonths": policy.stale_after_months},
                                     ("OLDER_THAN_DISPUTE_WINDOW",)))
        return decisions
    tariff_id = state.tariff_at(start, policy.default_tariff_id)
    version = catalogue.in_force(tariff_id, start)
    cycle, late = billed_cycle(state, natural)
    free_left = 0
    if version is not None:
        free_left = max(0, version.free_allowance_seconds - state.free_used.get(cycle, 0))
    rated = None if version is None else rate_with(
        version, p["usageType"], p["destinationClass"], p["durationSeconds"], p.get("volumeBytes") or 0,
        start, policy.timezone, free_left)
    if rated is None:
        reason = "NO_TARIFF_VERSION_IN_FORCE" if version is None else "NO_RATE_FOR_USAGE"
        decisions.insert(0, Decision(acc.UNRATED, ("CP2.EFFECTIVE_DATING",), "heldForReview",
                                     {**_ids(p), "accountId": p["accountId"], "cycle": cycle, "tariffId": tariff_id,
                                      "tariffVersion": version.version if version else None,
                                      "startDateTime": rfc3339(start)}, (reason,)))
        return decisions
    flags, rule_ids, reasons = [], ["CP2.EFFECTIVE_DATING", "CP2.TRACEABLE"], []
    if late:
        flags.append("LATE_DEFERRED")
        rule_ids.append("CP3.LATE")
        reasons.append("CYCLE_CLOSED_DEFERRED_TO_NEXT")
    windows = works.windows_covering(p["switchId"], p.get("areaCode"), start)
    if windows:
        flags.append("IN_CUTOVER_WINDOW")
        rule_ids.append("CP5.WINDOW_CDRS")
        reasons.append("CUTOVER_WINDOW_VERIFY_BEFORE_BILLING")
    outcome = "flaggedForVerification" if windows else ("chargedLate" if late else "charged")
    body = {
        **_ids(p),
        "accountId": p["accountId"],
        "cycle": cycle,
        "naturalCycle": natural,
        "startDateTime": rfc3339(start),
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
    decisions.insert(0, Decision(acc.RATED, tuple(rule_ids), outcome, body, tuple(reasons)))
    alert = huge_fee(state, cycle, state.cycle_totals.get(cycle, 0) + rated.amount, policy, p["accountId"])
    if alert is not None:
        decisions.append(alert)
    return decisions


def decide_bill(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    p = event.payload
    if p["billId"] in state.bills:
        return []  # a re-sent bill with a known id changes nothing
    cycle = cycle_of(p["billingPeriod"]["startDateTime"], policy.timezone)
    # CP3.LATE only: closing a cycle checks no fee; it only becomes a baseline cycle of later
    # CP3.HUGE_FEE checks, which cite the rule on their own HugeFeeAlert.
    return [Decision(acc.CYCLE_CLOSED, ("CP3.LATE",), "closed",
                     {"accountId": p["accountId"], "billId": p["billId"], "cycle": cycle,
                      "amountMinor": p["amountDue"]["amountMinor"],
                      "paymentDueDate": rfc3339(p["paymentDueDate"]),
                      "guardChargesMinor": state.cycle_totals.get(cycle, 0)})]

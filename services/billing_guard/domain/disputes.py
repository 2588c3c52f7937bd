"""Bill disputes (SPEC.md section 2): open with owner, transfer, hold, 15-day reply, evidence,
automatic credit for the guard's own fault classes, resolve with credit notes, close."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from schemas.decision_types.guard import (
    CREDIT_NOTE_ISSUED, DISPUTE_ACTION_REJECTED, DISPUTE_AUTO_CREDITED, DISPUTE_CANCELLED, DISPUTE_CLOSED,
    DISPUTE_OPENED, DISPUTE_REPLIED, DISPUTE_REPLY_OVERDUE, DISPUTE_RESOLVED, DISPUTE_TRANSFER_ACCEPTED,
    DISPUTE_TRANSFER_PROPOSED,
)
from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339, rfc3339

from .account import AccountState
from .charge_history import ChargeHistory
from .masking import mask_number
from .planned_works import WorksState
from .policy import GuardPolicy
from .rating import rate_with
from .tariffs import Catalogue

REPLY_TIMER = "disputeReply"

DISPUTE_TYPES = frozenset({DISPUTE_OPENED, DISPUTE_TRANSFER_PROPOSED, DISPUTE_TRANSFER_ACCEPTED, DISPUTE_REPLIED,
                           DISPUTE_REPLY_OVERDUE, DISPUTE_AUTO_CREDITED, DISPUTE_RESOLVED, DISPUTE_CLOSED, DISPUTE_CANCELLED})


@dataclass(frozen=True)
class Dispute:
    ticket_id: str
    bill_id: str
    cycle: str | None
    items: tuple[str, ...]
    amount: int
    owner: str
    opened_at: datetime
    reply_timer_id: str
    status: str = "acknowledged"  # TMF621: acknowledged | resolved | closed | cancelled
    pending_owner: str | None = None
    answered: bool = False
    overdue: bool = False
    credit: int = 0

    @property
    def holding(self) -> bool:
        return self.status == "acknowledged"


def held_amount(state: AccountState, bill_id: str | None = None) -> int:
    """D.HOLD: the amount of open disputes (on one bill, or all), excluded from dunning and CP4."""
    return sum(d.amount for d in state.disputes.values() if d.holding and (bill_id is None or d.bill_id == bill_id))


def _dispute_cycle(state: AccountState, history: ChargeHistory, bill_id: str, items) -> str | None:
    bill = state.bills.get(bill_id)
    if bill is not None:
        return bill["cycle"]
    charges = history.by_usage
    cycles = sorted({charges[i]["cycle"] for i in items if i in charges})
    return cycles[0] if cycles else None


def evidence_pack(state: AccountState, history: ChargeHistory, catalogue: Catalogue, works: WorksState,
                  cycle: str | None) -> dict:
    """D.EVIDENCE: itemized CDRs, the tariff version applied to each, every checkpoint decision
    that touched the account in the cycle. Numbers masked: the pack is read by staff."""
    charges = [c for c in history.by_usage.values() if c["cycle"] == cycle]
    charges.sort(key=lambda c: (c["startDateTime"], c["usageId"]))
    versions = sorted({(c["tariffId"], c["tariffVersion"]) for c in charges})
    tariffs = []
    for tariff_id, number in versions:
        v = catalogue.get(tariff_id, number)
        tariffs.append({"tariffId": tariff_id, "version": number,
                        "effectiveFrom": rfc3339(v.effective_from) if v else None,
                        "publishedAt": rfc3339(v.published_at) if v else None})
    work_ids = sorted({w for c in charges for w in c.get("workIds", ())})
    return {
        "cycle": cycle,
        "items": [{"usageId": c["usageId"], "startDateTime": c["startDateTime"], "usageType": c["usageType"],
                   "durationSeconds": c["durationSeconds"], "amountMinor": c["amountMinor"],
                   "tariffId": c["tariffId"], "tariffVersion": c["tariffVersion"], "flags": c["flags"],
                   "callingNumber": mask_number(c["callingNumber"]), "calledNumber": mask_number(c["calledNumber"]),
                   "decisionId": c["decisionId"]} for c in charges],
        "tariffVersions": tariffs,
        "checkpointDecisions": [{"decisionId": d, "decisionType": t, "ruleIds": list(r)}
                                for (c, d, t, r) in state.audit if c == cycle or c is None],
        "cutoverWindows": [{"workId": w, "plannedStart": rfc3339(works.works[w]["start"]),
                            "plannedEnd": rfc3339(works.works[w]["end"])} for w in work_ids if w in works.works],
    }


def guard_faults(state: AccountState, history: ChargeHistory, catalogue: Catalogue, items,
                 policy: GuardPolicy) -> list[dict]:
    """D.AUTO_CREDIT: disputed items the guard itself can show were wrongly charged."""
    faults, charges = [], history.by_usage
    for item in items:
        original = state.duplicates.get(item)
        if original is not None and original in charges:
            faults.append({"item": item, "fault": "CHARGED_DUPLICATE", "creditMinor": charges[original]["amountMinor"]})
            continue
        charge = charges.get(item)
        if charge is None:
            continue
        if "IN_CUTOVER_WINDOW" in charge["flags"]:
            faults.append({"item": item, "fault": "CHARGED_IN_CUTOVER_WINDOW", "creditMinor": charge["amountMinor"]})
            continue
        start = parse_rfc3339(charge["startDateTime"])
        tariff_id = state.tariff_at(start, policy.default_tariff_id)
        in_force = catalogue.in_force(tariff_id, start)
        if in_force is not None and (tariff_id, in_force.version) != (charge["tariffId"], charge["tariffVersion"]):
            right = rate_with(in_force, charge["usageType"], charge["destinationClass"], charge["durationSeconds"],
                              charge["volumeBytes"], start, policy.timezone)
            # Free allowance is not re-applied: the credit is the per-call difference, never negative.
            correct = right.amount if right is not None else 0
            faults.append({"item": item, "fault": "TARIFF_NOT_IN_FORCE", "creditMinor": max(0, charge["amountMinor"] - correct),
                           "chargedVersion": charge["tariffVersion"], "versionInForce": in_force.version})
    return faults


def _reject(p: dict, reason: str) -> list[Decision]:
    return [Decision(DISPUTE_ACTION_REJECTED, ("D.OPEN",), "rejected",
                     {"ticketId": p["ticketId"], "accountId": p["accountId"], "action": p["action"], "actorId": p["actorId"]},
                     (reason,))]


def _credit_note(event, p: dict, dispute: Dispute, amount: int, rule_ids, how: str) -> Decision:
    return Decision(CREDIT_NOTE_ISSUED, tuple(rule_ids), "issued",
                    {"creditNoteId": derived_id(event.event_id, "creditNote"), "ticketId": dispute.ticket_id,
                     "accountId": p["accountId"], "billId": dispute.bill_id, "cycle": dispute.cycle,
                     "amountMinor": amount, "currency": "CNY", "how": how})


def decide_dispute(state: AccountState, history: ChargeHistory, catalogue: Catalogue, works: WorksState, event,
                   policy: GuardPolicy) -> list[Decision]:
    """One action on a bill dispute ticket (billing.dispute.v1); an action the ticket's status
    does not allow is rejected with the reason (D.OPEN)."""
    p = event.payload
    dispute = state.disputes.get(p["ticketId"])
    if p["action"] == "open":
        if dispute is not None:
            return _reject(p, "TICKET_EXISTS")
        return _open(state, history, catalogue, works, event, policy)
    if dispute is None:
        return _reject(p, "UNKNOWN_TICKET")
    return ACTIONS.get(p["action"], _cancel)(dispute, event, policy)


def _open(state: AccountState, history: ChargeHistory, catalogue: Catalogue, works: WorksState, event,
          policy: GuardPolicy) -> list[Decision]:
    """D.OPEN, D.HOLD, D.EVIDENCE, D.REPLY_15D: the ticket opened with its owner, hold, evidence and
    reply deadline; then D.AUTO_CREDIT if the guard can show its own fault."""
    p = event.payload
    ticket = p["ticketId"]
    cycle = _dispute_cycle(state, history, p["billId"], p["disputedItems"])
    amount = p["disputedAmount"]["amountMinor"]
    timer_id = derived_id(event.event_id, REPLY_TIMER)
    due = event.event_time + timedelta(days=policy.dispute_reply_days)
    opened = Decision(
        DISPUTE_OPENED, ("D.OPEN", "D.HOLD", "D.EVIDENCE", "D.REPLY_15D"), "acknowledged",
        {"ticketId": ticket, "ticketType": "Bill Dispute", "accountId": p["accountId"], "billId": p["billId"],
         "cycle": cycle, "disputedItems": list(p["disputedItems"]), "disputedAmountMinor": amount,
         "ownerId": p["actorId"], "channel": p["channel"], "reason": p["reason"],
         # D.HOLD: dunning reads this: no late fee, reminder or suspension for the held amount.
         "hold": {"billId": p["billId"], "amountMinor": amount, "billState": "onHold"},
         "replyDueAt": rfc3339(due), "evidence": evidence_pack(state, history, catalogue, works, cycle)},
        timer=Timer(timer_id, due, REPLY_TIMER, p["accountId"], {"ticketId": ticket}),
    )
    faults = guard_faults(state, history, catalogue, p["disputedItems"], policy)
    credit = min(amount, sum(f["creditMinor"] for f in faults))
    if not (faults and credit > 0):
        return [opened]
    opening = Dispute(ticket, p["billId"], cycle, tuple(p["disputedItems"]), amount, p["actorId"], event.event_time,
                      timer_id)
    return [opened, *_auto_credit(event, opening, faults, credit)]


def _auto_credit(event, dispute: Dispute, faults: list[dict], credit: int) -> list[Decision]:
    """D.AUTO_CREDIT, D.RESOLVE: the ticket resolved at once for the guard's own faults, credited."""
    p = event.payload
    resolution = "upheld" if credit == dispute.amount else "partiallyUpheld"
    return [
        Decision(DISPUTE_AUTO_CREDITED, ("D.AUTO_CREDIT", "D.RESOLVE", "D.HOLD"), resolution,
                 {"ticketId": dispute.ticket_id, "accountId": p["accountId"], "resolution": resolution,
                  "creditMinor": credit, "faults": faults, "holdReleasedMinor": dispute.amount},
                 tuple(sorted({f["fault"] for f in faults})), cancels_timers=(dispute.reply_timer_id,)),
        _credit_note(event, p, dispute, credit, ("D.AUTO_CREDIT", "D.RESOLVE"), "automatic"),
    ]


def _about(p: dict) -> dict:
    """What every decision on an open ticket says first: the ticket, its account, who acted."""
    return {"ticketId": p["ticketId"], "accountId": p["accountId"], "actorId": p["actorId"]}


def _transfer(dispute: Dispute, event, policy: GuardPolicy) -> list[Decision]:
    """D.OPEN: only the owner proposes a new owner, who must accept."""
    p = event.payload
    if dispute.status != "acknowledged":
        return _reject(p, "DISPUTE_NOT_OPEN")
    if p["actorId"] != dispute.owner:
        return _reject(p, "ONLY_OWNER_MAY_TRANSFER")
    return [Decision(DISPUTE_TRANSFER_PROPOSED, ("D.OPEN",), "pendingAcceptance",
                     {**_about(p), "fromOwnerId": dispute.owner, "toOwnerId": p["toOwnerId"], "reason": p["reason"]})]


def _accept_transfer(dispute: Dispute, event, policy: GuardPolicy) -> list[Decision]:
    """D.OPEN: the proposed owner takes the ticket."""
    p = event.payload
    if dispute.pending_owner is None or p["actorId"] != dispute.pending_owner:
        return _reject(p, "NO_TRANSFER_TO_THIS_ACTOR")
    return [Decision(DISPUTE_TRANSFER_ACCEPTED, ("D.OPEN",), "transferred",
                     {**_about(p), "fromOwnerId": dispute.owner, "toOwnerId": dispute.pending_owner})]


def _reply(dispute: Dispute, event, policy: GuardPolicy) -> list[Decision]:
    """D.REPLY_15D: the answer to the customer, late if after the reply deadline."""
    p = event.payload
    if dispute.status != "acknowledged":
        return _reject(p, "DISPUTE_NOT_OPEN")
    late = event.event_time > dispute.opened_at + timedelta(days=policy.dispute_reply_days)
    return [Decision(DISPUTE_REPLIED, ("D.REPLY_15D",), "answeredLate" if late else "answered",
                     {**_about(p), "replyText": p.get("replyText") or p["reason"]},
                     ("REPLY_AFTER_DEADLINE",) if late else (), cancels_timers=(dispute.reply_timer_id,))]


def _resolve(dispute: Dispute, event, policy: GuardPolicy) -> list[Decision]:
    """D.RESOLVE, D.HOLD: upheld, partly upheld or rejected; the hold released, any credit issued."""
    p = event.payload
    if dispute.status != "acknowledged":
        return _reject(p, "DISPUTE_NOT_OPEN")
    resolution = p["resolution"]
    credit = {"upheld": dispute.amount, "rejected": 0}.get(resolution)
    if credit is None:
        credit = p["creditAmount"]["amountMinor"]
        if not 0 < credit < dispute.amount:
            return _reject(p, "PARTIAL_CREDIT_OUT_OF_RANGE")
    out = [Decision(DISPUTE_RESOLVED, ("D.RESOLVE", "D.HOLD"), resolution,
                    {**_about(p), "resolution": resolution, "creditMinor": credit, "reason": p["reason"],
                     "holdReleasedMinor": dispute.amount},
                    () if resolution != "rejected" else ("CUSTOMER_CLAIM_REJECTED",),
                    cancels_timers=() if dispute.answered else (dispute.reply_timer_id,))]
    if credit:
        out.append(_credit_note(event, p, dispute, credit, ("D.RESOLVE",), "manual"))
    return out


def _close(dispute: Dispute, event, policy: GuardPolicy) -> list[Decision]:
    """D.RESOLVE: a resolved ticket is closed."""
    p = event.payload
    if dispute.status != "resolved":
        return _reject(p, "NOT_RESOLVED")
    return [Decision(DISPUTE_CLOSED, ("D.RESOLVE",), "closed", _about(p))]


def _cancel(dispute: Dispute, event, policy: GuardPolicy) -> list[Decision]:
    """D.HOLD: the customer withdraws; the hold is released."""
    p = event.payload
    if dispute.status != "acknowledged":
        return _reject(p, "DISPUTE_NOT_OPEN")
    return [Decision(DISPUTE_CANCELLED, ("D.HOLD",), "cancelled", {**_about(p), "holdReleasedMinor": dispute.amount},
                     cancels_timers=(dispute.reply_timer_id,))]


# The actions on an existing ticket (schemas.billing.DISPUTE_ACTIONS); the one left, cancel, is the default.
ACTIONS = {"transfer": _transfer, "acceptTransfer": _accept_transfer, "reply": _reply, "resolve": _resolve,
           "close": _close}


def on_reply_timer(state: AccountState, event) -> list[Decision]:
    dispute = state.disputes.get(event.payload["data"]["ticketId"])
    if dispute is None or dispute.answered or dispute.status != "acknowledged":
        return []
    return [Decision(DISPUTE_REPLY_OVERDUE, ("D.REPLY_15D",), "overdue",
                     {"ticketId": dispute.ticket_id, "ownerId": dispute.owner,
                      "openedAt": rfc3339(dispute.opened_at), "replyDueAt": rfc3339(event.event_time)},
                     ("NO_REPLY_WITHIN_15_DAYS",))]


# What each decision on an open ticket changes in it.
_TICKET_CHANGES = {
    DISPUTE_TRANSFER_PROPOSED: lambda d, body: replace(d, pending_owner=body["toOwnerId"]),
    DISPUTE_TRANSFER_ACCEPTED: lambda d, body: replace(d, owner=body["toOwnerId"], pending_owner=None),
    DISPUTE_REPLIED: lambda d, body: replace(d, answered=True),
    DISPUTE_REPLY_OVERDUE: lambda d, body: replace(d, overdue=True),
    DISPUTE_AUTO_CREDITED: lambda d, body: replace(d, status="resolved", answered=True, credit=body["creditMinor"]),
    DISPUTE_RESOLVED: lambda d, body: replace(d, status="resolved", answered=True, credit=body["creditMinor"]),
    DISPUTE_CLOSED: lambda d, body: replace(d, status="closed"),
    DISPUTE_CANCELLED: lambda d, body: replace(d, status="cancelled"),
}


def evolve_dispute(state: AccountState, decision: dict) -> AccountState:
    """A dispute decision (DISPUTE_TYPES) folded into the account's tickets."""
    body = decision["payload"]
    if decision["decisionType"] == DISPUTE_OPENED:
        d = Dispute(body["ticketId"], body["billId"], body["cycle"], tuple(body["disputedItems"]),
                    body["disputedAmountMinor"], body["ownerId"], parse_rfc3339(decision["businessTime"]),
                    body["timer"]["timerId"])
    else:
        d = _TICKET_CHANGES[decision["decisionType"]](state.disputes[body["ticketId"]], body)
    return replace(state, disputes={**state.disputes, d.ticket_id: d})

"""The story of one charge, from the stored decisions alone (issue 3 "done when").

A pure function over guard decisions (as stored in the events table or read from
guard.decisions.v1): which tariff version produced the charge and the decision that accepted
that version (approval / filing refs), which checkpoints the CDR passed (sanity, dedup,
sequence, stale, late, cutover window, huge fee, the customer-data change that put the
account on its plan), the usage cycle of its call start (closed by the CDR watermark, never
by a bill) and the bill recorded for that cycle, and, if it was disputed, how and when the
dispute was answered. Phone numbers are masked: the story is read by staff (A.PRIVACY).
"""
from __future__ import annotations

from schemas.decision_types.guard import (
    BILL_CYCLE_CLOSED, CDR_RATED, CDR_UNRATED, CREDIT_NOTE_ISSUED, CUSTOMER_DATA_CHANGED, DISPUTE_AUTO_CREDITED,
    DISPUTE_CANCELLED, DISPUTE_CLOSED, DISPUTE_OPENED, DISPUTE_PREFIX, DISPUTE_REPLIED, DISPUTE_REPLY_OVERDUE,
    DISPUTE_RESOLVED, DUPLICATE_CDR_SUPPRESSED, HUGE_FEE_ALERT, OUTAGE_CREDIT_ISSUED, PLANNED_WORK_CLEARED,
    STALE_CDR_HELD, SWITCH_SEQUENCE_RECORDED, TARIFF_VERSION_ACCEPTED, USAGE_CYCLE_CLOSED,
)
from schemas.registry import REPARTITION_TOPICS

from .masking import mask_number

ANSWERS = (DISPUTE_REPLIED, DISPUTE_RESOLVED, DISPUTE_AUTO_CREDITED)
# The decisions that tell what became of a CDR, one per CDR copy.
CDR_OUTCOMES = (CDR_RATED, STALE_CDR_HELD, CDR_UNRATED, DUPLICATE_CDR_SUPPRESSED)
# The decisions routed to their switch's sequence (CP3.SEQUENCE_GAP), each carrying its number.
SEQUENCE_JUDGED = REPARTITION_TOPICS["billing_guard"].decision_types
# A routed CDR with no record of its own opened and closed no gap: it was in sequence, filled part
# of a gap, or repeated a number (or its switch has not judged it yet).
NO_GAP_CHANGE = "noGapOpenedOrClosed"
# A ticket's status after each step that changes it.
_STATUS_AFTER = {DISPUTE_RESOLVED: "resolved", DISPUTE_AUTO_CREDITED: "resolved", DISPUTE_CLOSED: "closed",
                 DISPUTE_CANCELLED: "cancelled"}


def _usage_cycle(decisions: list[dict], account: str, cycle: str) -> dict:
    """Whether the CDR watermark has closed the charge's cycle (CP3.LATE), and by which decision."""
    closing = next((d for d in decisions if d["decisionType"] == USAGE_CYCLE_CLOSED and d["payload"]["accountId"] == account
                    and d["payload"]["cycle"] == cycle), None)
    if closing is None:
        return {"cycle": cycle, "closed": False, "closesAt": None}
    return {"cycle": cycle, "closed": True, "closesAt": closing["payload"]["closesAt"], **_ref(closing)}


def _late_result(flags: list) -> str:
    if "LATE_ADJUSTMENT" in flags:
        return "lateAdjustment"
    # Decisions made before issue 15 moved late usage to the next cycle.
    return "deferred" if "LATE_DEFERRED" in flags else "inCycle"


def _ref(d: dict) -> dict:
    return {"decisionId": d["decisionId"], "decisionType": d["decisionType"], "businessTime": d["businessTime"],
            "outcome": d["outcome"], "ruleIds": list(d["ruleIds"]), "reasonCodes": list(d["reasonCodes"]),
            "policyVersion": d.get("policyVersion")}


def _tariff_acceptance(decisions: list[dict], tariff_id: str, version: int) -> dict | None:
    for d in decisions:
        body = d["payload"]
        if d["decisionType"] == TARIFF_VERSION_ACCEPTED and (body["tariffId"], body["version"]) == (tariff_id, version):
            return {**_ref(d), "tariffId": tariff_id, "version": version,
                    "effectiveFrom": body["tariff"]["effectiveFrom"], "publishedAt": body["tariff"]["publishedAt"],
                    "replacesVersion": body.get("replacesVersion"), "increase": body.get("increase"),
                    "approvalRef": body.get("approvalRef"), "filingRef": body.get("filingRef")}
    return None


def _plan_change(decisions: list[dict], account: str, tariff_id: str, start: str) -> dict | None:
    """The accepted CP1 tariffPlan change in force at the CDR's start, if the plan was ever changed."""
    chosen = None
    for d in decisions:
        body = d["payload"]
        if (d["decisionType"] == CUSTOMER_DATA_CHANGED and body.get("accountId") == account
                and body["field"] == "tariffPlan" and body["effectiveFrom"] <= start):
            chosen = d
    if chosen is None or chosen["payload"]["after"] != tariff_id:
        return None
    body = chosen["payload"]
    return {**_ref(chosen), "before": body["before"], "after": body["after"], "effectiveFrom": body["effectiveFrom"],
            "operatorId": body["operatorId"], "approverId": body.get("approverId"), "channel": body["channel"]}


def _dispute_trail(decisions: list[dict], account: str, usage_ids: set[str]) -> list[dict]:
    tickets = [d for d in decisions if d["decisionType"] == DISPUTE_OPENED and d["payload"]["accountId"] == account
               and usage_ids & set(d["payload"]["disputedItems"])]
    out = []
    for opened in tickets:
        ticket = opened["payload"]["ticketId"]
        steps = [d for d in decisions if d["decisionType"].startswith(DISPUTE_PREFIX) or d["decisionType"] == CREDIT_NOTE_ISSUED]
        steps = [d for d in steps if d["payload"].get("ticketId") == ticket and d["payload"].get("accountId", account) == account]
        # Overdue alerts carry no accountId; they are on the account's stream.
        steps = [d for d in steps if d["streamId"] == opened["streamId"]]
        trail = [{**_ref(d), "actorId": d["payload"].get("actorId") or d["payload"].get("ownerId")} for d in steps]
        answered = next((d for d in steps if d["decisionType"] in ANSWERS), None)
        resolution = next((d for d in steps if d["decisionType"] in (DISPUTE_RESOLVED, DISPUTE_AUTO_CREDITED)), None)
        notes = [d for d in steps if d["decisionType"] == CREDIT_NOTE_ISSUED]
        status = "open"
        for d in steps:
            status = _STATUS_AFTER.get(d["decisionType"], status)
        out.append({
            "ticketId": ticket, "billId": opened["payload"]["billId"], "openedAt": opened["businessTime"],
            "ownerAtOpen": opened["payload"]["ownerId"], "disputedItems": opened["payload"]["disputedItems"],
            "disputedAmountMinor": opened["payload"]["disputedAmountMinor"], "replyDueAt": opened["payload"]["replyDueAt"],
            "answeredAt": answered["businessTime"] if answered else None,
            "overdue": any(d["decisionType"] == DISPUTE_REPLY_OVERDUE for d in steps),
            "resolution": resolution["payload"]["resolution"] if resolution else None,
            "resolvedAt": resolution["businessTime"] if resolution else None,
            "automatic": bool(resolution and resolution["decisionType"] == DISPUTE_AUTO_CREDITED),
            "creditNotes": [{"creditNoteId": n["payload"]["creditNoteId"], "amountMinor": n["payload"]["amountMinor"],
                             "issuedAt": n["businessTime"], "how": n["payload"]["how"], "decisionId": n["decisionId"]}
                            for n in notes],
            "status": status,
            "trail": trail,
        })
    return out


def explain_charge(decisions: list[dict], usage_id: str) -> dict:
    """Everything the stored decisions say about one usage id; {"found": False} if nothing."""
    own = [d for d in decisions if d["payload"].get("usageId") == usage_id and d["decisionType"] in CDR_OUTCOMES]
    if not own:
        return {"usageId": usage_id, "found": False}
    main = own[0]
    body = main["payload"]
    account = body["accountId"]
    story: dict = {"usageId": usage_id, "found": True, "accountId": account, "switchId": body["switchId"],
                   "originId": body["originId"], "decision": _ref(main)}
    original = usage_id
    if main["decisionType"] == DUPLICATE_CDR_SUPPRESSED:
        original = body["originalUsageId"]
        story["duplicateOf"] = original
    checkpoints = _cdr_checkpoints(decisions, main, usage_id, original)
    charge = next((d for d in decisions if d["decisionType"] == CDR_RATED and d["payload"]["usageId"] == original), None)
    if charge is not None:
        c = charge["payload"]
        story["charge"] = _charge_summary(charge)
        story["tariff"] = {"tariffId": c["tariffId"], "version": c["tariffVersion"],
                           "acceptance": _tariff_acceptance(decisions, c["tariffId"], c["tariffVersion"]),
                           "planChange": _plan_change(decisions, account, c["tariffId"], c["startDateTime"])}
        checkpoints.update(_charge_checkpoints(decisions, account, c))
        story.update(_charge_cycles(decisions, account, c))
    story["checkpoints"] = checkpoints
    # A dispute about this usage, its original, or any suppressed copy of it concerns this charge.
    related = {usage_id, original} | {c["usageId"] for c in checkpoints["dedup"]["suppressedCopies"]}
    story["disputes"] = _dispute_trail(decisions, account, related)
    story["outcome"] = outcome(story)
    return story


def _cdr_checkpoints(decisions: list[dict], main: dict, usage_id: str, original: str) -> dict:
    """The checkpoints every decided CDR went through, charged or not (CP3.SANITY to CP2.EFFECTIVE_DATING)."""
    kind, account = main["decisionType"], main["payload"]["accountId"]
    checkpoints: dict = {
        # A decided CDR passed CP3.SANITY; one that failed is in the dead-letter topic, not here.
        "sanity": {"ruleId": "CP3.SANITY", "result": "passed"},
        "dedup": {"ruleId": "CP3.DEDUP",
                  "result": "suppressedDuplicate" if kind == DUPLICATE_CDR_SUPPRESSED else "firstCopy",
                  "suppressedCopies": [{"usageId": d["payload"]["usageId"], **_ref(d)} for d in decisions
                                       if d["decisionType"] == DUPLICATE_CDR_SUPPRESSED
                                       and d["payload"]["originalUsageId"] == original
                                       and d["payload"]["accountId"] == account]},
    }
    sequence = _sequence_checkpoint(decisions, main, usage_id)
    if sequence is not None:
        checkpoints["sequence"] = sequence
    if kind == STALE_CDR_HELD:
        checkpoints["stale"] = {"ruleId": "CP3.STALE", "result": "heldForReview", **_ref(main)}
    if kind == CDR_UNRATED:
        checkpoints["rating"] = {"ruleId": "CP2.EFFECTIVE_DATING", "result": "heldForReview", **_ref(main)}
    return checkpoints


def _sequence_checkpoint(decisions: list[dict], main: dict, usage_id: str) -> dict | None:
    """CP3.SEQUENCE_GAP: the CDR's place in its switch's sequence. A switch stores a record only
    when a CDR opens or closes a gap (sequences.py); otherwise the number is the charge's own.
    Stores older than that hold a record for every CDR, and charges without the number."""
    record = next((d for d in decisions
                   if d["decisionType"] == SWITCH_SEQUENCE_RECORDED and d["payload"]["usageId"] == usage_id), None)
    if record is not None:
        return {"ruleId": "CP3.SEQUENCE_GAP", "sequenceNumber": record["payload"]["sequenceNumber"], **_ref(record)}
    # A suppressed copy is never routed to its switch: its number was judged with its original's.
    number = main["payload"].get("sequenceNumber")
    if number is None or main["decisionType"] not in SEQUENCE_JUDGED:
        return None
    return {"ruleId": "CP3.SEQUENCE_GAP", "sequenceNumber": number, "outcome": NO_GAP_CHANGE}


def _charge_summary(charge: dict) -> dict:
    """The charge as rated (CP2.TRACEABLE), numbers masked."""
    c = charge["payload"]
    return {
        "decisionId": charge["decisionId"], "ratedAt": charge["businessTime"], "outcome": charge["outcome"],
        "startDateTime": c["startDateTime"], "usageType": c["usageType"], "destinationClass": c["destinationClass"],
        "durationSeconds": c["durationSeconds"], "billedSeconds": c["billedSeconds"], "amountMinor": c["amountMinor"],
        "rateApplied": c["rateApplied"], "connectFeeMinor": c["connectFeeMinor"], "capped": c["capped"],
        "freeSecondsUsed": c["freeSecondsUsed"], "rounding": c["rounding"],
        "callingNumber": mask_number(c["callingNumber"]), "calledNumber": mask_number(c["calledNumber"]),
        "cycle": c["cycle"], "naturalCycle": c["naturalCycle"], "flags": list(c["flags"]),
        "ruleIds": list(charge["ruleIds"]), "policyVersion": charge.get("policyVersion"),
    }


def _charge_checkpoints(decisions: list[dict], account: str, c: dict) -> dict:
    """The checkpoints only a charged CDR meets: CP3.LATE, CP5.WINDOW_CDRS, CP3.HUGE_FEE (c: its CdrRated body)."""
    works = [d for d in decisions if d["decisionType"] == PLANNED_WORK_CLEARED and d["payload"]["workId"] in c["workIds"]]
    alerts = [d for d in decisions if d["decisionType"] == HUGE_FEE_ALERT and d["payload"]["accountId"] == account
              and d["payload"]["cycle"] == c["cycle"]]
    return {
        "late": {"ruleId": "CP3.LATE", "result": _late_result(c["flags"]),
                 "naturalCycle": c["naturalCycle"], "billedCycle": c["cycle"]},
        "cutoverWindow": {
            "ruleId": "CP5.WINDOW_CDRS",
            "result": "flaggedForVerification" if "IN_CUTOVER_WINDOW" in c["flags"] else "outsideWindows",
            "works": [{"workId": w["payload"]["workId"], "plannedStart": w["payload"]["plannedStart"],
                       "plannedEnd": w["payload"]["plannedEnd"], **_ref(w)} for w in works]},
        "hugeFee": {"ruleId": "CP3.HUGE_FEE", "alerts": [
            {"cycleChargesMinor": a["payload"]["cycleChargesMinor"],
             "baselineAverageMinor": a["payload"]["baselineAverageMinor"], **_ref(a)} for a in alerts]},
    }


def _charge_cycles(decisions: list[dict], account: str, c: dict) -> dict:
    """The charge's usage cycle (CP3.LATE), the bill recorded for it (CP4) and outage credits (CP5.OUTAGE_CREDIT)."""
    bill = next((d for d in decisions if d["decisionType"] == BILL_CYCLE_CLOSED and d["payload"]["accountId"] == account
                 and d["payload"]["cycle"] == c["cycle"]), None)
    return {
        "usageCycle": _usage_cycle(decisions, account, c["cycle"]),
        "billCycle": {"cycle": c["cycle"], "closed": bill is not None,
                      "billId": bill["payload"]["billId"] if bill else None,
                      "billAmountMinor": bill["payload"]["amountMinor"] if bill else None,
                      "closedAt": bill["businessTime"] if bill else None},
        "outageCredits": [{"workId": d["payload"]["workId"], "creditMinor": d["payload"]["creditMinor"], **_ref(d)}
                          for d in decisions if d["decisionType"] == OUTAGE_CREDIT_ISSUED
                          and d["payload"]["accountId"] == account and d["payload"]["workId"] in c["workIds"]],
    }


def outcome(story: dict) -> str:
    """The verdict first (issue 16: it was buried mid-line, and absent for a call held for review):
    what happened to the charge, with the rule that decided it, and any credit since."""
    decision = story["decision"]
    reasons = ", ".join(decision["reasonCodes"]) or "-"
    if "duplicateOf" in story:
        return f"suppressed as a duplicate of {story['duplicateOf']}, never charged (CP3.DEDUP)"
    if decision["decisionType"] != CDR_RATED:
        rule = decision["ruleIds"][0] if decision["ruleIds"] else "-"
        return f"{decision['outcome']}, not charged ({rule}: {reasons})"
    charge = story["charge"]
    credited = sum(n["amountMinor"] for d in story["disputes"] for n in d["creditNotes"])
    window = "flagged for verification: in a cutover window (CP5.WINDOW_CDRS)"
    said = {"charged": "charged",
            # Decisions made before issue 15 deferred late usage to the next cycle.
            "chargedLate": "charged in a later cycle (CP3.LATE)",
            "lateAdjustment": f"charged as a late adjustment to its own closed cycle {charge['cycle']} (CP3.LATE)",
            "flaggedForVerification": f"charged, {window}"}
    text = f"{said.get(charge['outcome'], charge['outcome'])} {charge['amountMinor']} fen"
    if charge["outcome"] == "lateAdjustment" and "IN_CUTOVER_WINDOW" in charge["flags"]:
        text += f", {window}"
    return text + (f"; {credited} fen credited back (credit notes)" if credited else "")


def render(story: dict) -> str:
    """The story as text for the CLI (already masked)."""
    if not story.get("found"):
        return f"usage {story['usageId']}: no guard decision found"
    lines = [f"usage {story['usageId']} account {story['accountId']} switch {story['switchId']} origin {story['originId']}",
             f"  OUTCOME: {outcome(story)}"]
    if "duplicateOf" in story:
        lines.append(f"  DUPLICATE of {story['duplicateOf']}: suppressed at {story['decision']['businessTime']}, never charged")
    c = story.get("charge")
    if c:
        lines.append(f"  charge: {c['amountMinor']} fen for {c['usageType']}/{c['destinationClass']} {c['durationSeconds']} s"
                     f" (billed {c['billedSeconds']} s at {c['rateApplied']}) from {c['callingNumber']} to {c['calledNumber']}"
                     f" started {c['startDateTime']}; rated {c['ratedAt']} outcome {c['outcome']} flags {c['flags'] or '-'}")
        t = story["tariff"]
        acc = t["acceptance"]
        lines.append(f"  tariff: {t['tariffId']} v{t['version']}"
                     + (f" accepted {acc['businessTime']} (decision {acc['decisionId']}), effective {acc['effectiveFrom']},"
                        f" published {acc['publishedAt']}, approval {acc['approvalRef'] or '-'}, filing {acc['filingRef'] or '-'}"
                        if acc else " (acceptance decision not found)"))
        if t["planChange"]:
            p = t["planChange"]
            lines.append(f"  plan: {p['before']} -> {p['after']} effective {p['effectiveFrom']} by {p['operatorId']}"
                         f" (decision {p['decisionId']})")
        u = story["usageCycle"]
        lines.append(f"  usage cycle: {u['cycle']}" + (f" closed by the CDR watermark at {u['closesAt']} (decision {u['decisionId']})"
                                                      if u["closed"] else " (open)"))
        b = story["billCycle"]
        # A bill is recorded for CP4 and disputes; it closes no usage cycle (cycles.py).
        lines.append(f"  bill for cycle {b['cycle']}: " + (f"{b['billId']} ({b['billAmountMinor']} fen) recorded at {b['closedAt']}"
                                                           if b["closed"] else "none recorded"))
    cp = story["checkpoints"]
    lines.append("  checkpoints:")
    lines.append(f"    CP3.SANITY passed; CP3.DEDUP {cp['dedup']['result']}, copies suppressed: "
                 + (", ".join(f"{s['usageId']} at {s['businessTime']}" for s in cp["dedup"]["suppressedCopies"]) or "none"))
    if "sequence" in cp:
        lines.append(f"    CP3.SEQUENCE_GAP seq {cp['sequence']['sequenceNumber']} {cp['sequence']['outcome']}")
    if "stale" in cp:
        lines.append(f"    CP3.STALE held for review at {cp['stale']['businessTime']}")
    if "late" in cp:
        lines.append(f"    CP3.LATE {cp['late']['result']} (natural {cp['late']['naturalCycle']}, billed {cp['late']['billedCycle']})")
    if "cutoverWindow" in cp:
        w = cp["cutoverWindow"]
        lines.append(f"    CP5.WINDOW_CDRS {w['result']}" + "".join(f" work {x['workId']} {x['plannedStart']}..{x['plannedEnd']}"
                                                               for x in w["works"]))
    if "hugeFee" in cp:
        lines.append("    CP3.HUGE_FEE " + (", ".join(f"alert at {a['businessTime']} ({a['cycleChargesMinor']} fen)"
                                                      for a in cp["hugeFee"]["alerts"]) or "no alert"))
    for d in story["disputes"]:
        lines.append(f"  dispute {d['ticketId']} opened {d['openedAt']} by {d['ownerAtOpen']} for {d['disputedAmountMinor']} fen,"
                     f" reply due {d['replyDueAt']}; answered {d['answeredAt'] or 'not yet'}"
                     f"{' (OVERDUE)' if d['overdue'] else ''}; resolution {d['resolution'] or '-'}"
                     f"{' (automatic)' if d['automatic'] else ''} at {d['resolvedAt'] or '-'}; status {d['status']}")
        for n in d["creditNotes"]:
            lines.append(f"    credit note {n['creditNoteId']} {n['amountMinor']} fen issued {n['issuedAt']} ({n['how']})")
        for s in d["trail"]:
            lines.append(f"    {s['businessTime']} {s['decisionType']} {s['outcome']} {s['actorId'] or ''}".rstrip())
    if not story["disputes"]:
        lines.append("  disputes: none")
    return "\n".join(lines)

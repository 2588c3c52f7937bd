"""D.ITEMIZED: an account's itemized list of charges for a cycle, free at any time.

A pure function over the account's decisions (as stored or read from guard.decisions.v1).
Numbers are masked unless the reader is the account's owner reading their own bill (A.PRIVACY).
"""
from __future__ import annotations

from schemas.decision_types.guard import CDR_RATED, CREDIT_NOTE_ISSUED
from .masking import mask_number


def itemized_bill(decisions: list[dict], account_id: str, cycle: str, *, owner_view: bool = False) -> dict:
    show = (lambda n: n) if owner_view else mask_number
    lines, credits = [], []
    for d in decisions:
        body = d["payload"]
        if body.get("accountId") != account_id:
            continue
        if d["decisionType"] == CDR_RATED and body["cycle"] == cycle:
            lines.append({
                "usageId": body["usageId"], "switchId": body["switchId"], "originId": body["originId"],
                "startDateTime": body["startDateTime"], "usageType": body["usageType"],
                "destinationClass": body["destinationClass"], "durationSeconds": body["durationSeconds"],
                "billedSeconds": body["billedSeconds"], "callingNumber": show(body["callingNumber"]),
                "calledNumber": show(body["calledNumber"]), "tariffId": body["tariffId"],
                "tariffVersion": body["tariffVersion"], "amountMinor": body["amountMinor"], "flags": body["flags"],
                "decisionId": d["decisionId"],
            })
        elif d["decisionType"] == CREDIT_NOTE_ISSUED and body.get("cycle") == cycle:
            credits.append({"creditNoteId": body["creditNoteId"], "ticketId": body["ticketId"],
                            "amountMinor": body["amountMinor"], "decisionId": d["decisionId"]})
    lines.sort(key=lambda line: (line["startDateTime"], line["usageId"]))
    charged = sum(line["amountMinor"] for line in lines)
    credited = sum(c["amountMinor"] for c in credits)
    return {"accountId": account_id, "cycle": cycle, "lines": lines, "credits": credits,
            "chargesMinor": charged, "creditsMinor": credited, "totalMinor": charged - credited,
            "ruleIds": ["D.ITEMIZED", "CP2.TRACEABLE"]}

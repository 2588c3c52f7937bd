"""The self-check report as text (for the terminal), CSV (one row per standard, then one per
breach), and the store read that feeds it."""
from __future__ import annotations

import csv
import html
import io

import orjson

from schemas.decision_types import guard

from .self_check import DISPUTE_ANSWERS, TYPES, lookback_start, period_bounds
from .self_check_policy import SelfCheckPolicy


def _shown(value) -> str:
    return "–" if value is None else str(value)


def _measured(row: dict) -> str:
    m = {k: _shown(v) if not isinstance(v, list) else v for k, v in row["measured"].items()}
    if "p50" in m:
        return (f"{m['count']} measured, {m['breaches']} breaches, p50/p95/max "
                f"{m['p50']}/{m['p95']}/{m['max']} {m['unit']}")
    if row["key"] == "cutoverNotice":
        return f"{m['works']} works, {m['shortNotices']} short notices (shortest lead {m['minLeadHours']} h)"
    if row["key"] == "cardReplacement":
        return (f"{m['count']} replacements, {m['measured']} measured: p99 {m['p99Seconds']} s, {m['overLimit']} over the"
                f" limit ({m['pastLiveWindow']} stored past the live window: replayed or late upstream);"
                f" {m['notRecorded']} without a recorded time")
    if row["key"] == "hugeFee":
        return f"{m['alerts']} alerts, {m['askedImmediately']} asked for an immediate notice, notified {m['notified']}"
    if row["key"] == "tariffIncrease":
        approved = ", ".join(f"{a['tariffId']} v{a['version']} ({a['approvalRef']})" for a in m["approved"]) or "none"
        return f"{m['rejected']} rejected; approved with approval id: {approved}"
    return f"{m['count']} of {m['checked']} checked"


def render_text(report: dict) -> str:
    lines = [f"服务标准自查 self-check {report['period']} ({report['from']} .. {report['to']}),"
             f" policy {report['policyVersion']}: {report['status']}"]
    for row in report["rows"]:
        lines.append(f"{row['status']}  {row['standard']} [{row['ruleId']}] limit {row['limit']}; {row['department']}")
        lines.append(f"      {_measured(row)}")
        if row.get("note"):
            lines.append(f"      note: {row['note']}")
        for breach in row["breaches"]:
            lines.append("      breach: " + ", ".join(f"{k}={v}" for k, v in breach.items() if k != "decisionIds")
                         + " decisions " + " ".join(breach["decisionIds"]))
    return "\n".join(lines)


def to_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period", "standard", "ruleId", "limit", "measured", "status", "department", "breachDecisionIds",
                     "note"])
    for row in report["rows"]:
        ids = " ".join(i for b in row["breaches"] for i in b["decisionIds"])
        writer.writerow([report["period"], row["standard"], row["ruleId"], row["limit"], _measured(row), row["status"],
                         row["department"], ids, row.get("note") or ""])
    return out.getvalue()


def _status_class(row: dict) -> str:
    return "unmeasured" if row["met"] is None else ("met" if row["met"] else "breach")


def _note(row: dict) -> str:
    return f"<br><small>{html.escape(row['note'])}</small>" if row.get("note") else ""


def render_html(report: dict) -> str:
    """A standalone page to file or print (the export the monthly self-check is kept as)."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(r['standard'])}</td><td>{esc(r['ruleId'])}</td><td>{esc(r['limit'])}</td>"
        f"<td>{esc(_measured(r))}{_note(r)}</td><td class=\"{_status_class(r)}\">{esc(r['status'])}</td>"
        f"<td>{esc(r['department'])}</td><td>{esc(' | '.join(' '.join(b['decisionIds']) for b in r['breaches']))}</td></tr>"
        for r in report["rows"])
    return (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>服务标准自查 {esc(report['period'])}"
            "</title><style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px 8px}"
            ".met{color:#2f7d3c}.breach{color:#c9503d;font-weight:bold}.unmeasured{color:#8a6d1f}</style></head><body>"
            f"<h1>服务标准自查 self-check {esc(report['period'])}: {esc(report['status'])}</h1>"
            f"<p>{esc(report['from'])} .. {esc(report['to'])}, policy {esc(report['policyVersion'])}</p>"
            "<table><tr><th>standard</th><th>rule</th><th>limit</th><th>measured</th><th>result</th><th>department</th>"
            f"<th>breaches (decision ids)</th></tr>{rows}</table></body></html>\n")


async def read_decisions(conn, period: str, policy: SelfCheckPolicy) -> list[dict]:
    """The decisions the rows read, from the look-back before the period to its end; each with
    the time it was stored (C.REPLACE_NOW's latency is that minus its business time). A dispute
    answered in the period is matched to its opening and earlier answers by ticket id, however
    long ago they were (D.REPLY_15D): those are read with no look-back limit."""
    _, end = period_bounds(period, policy)
    rows = await conn.fetch(
        "SELECT payload, recorded_at FROM events WHERE event_type = ANY($1::text[])"
        " AND business_time >= $2 AND business_time < $3 ORDER BY global_position",
        list(TYPES), lookback_start(period, policy), end)
    decisions = [_decision(r) for r in rows]
    tickets = sorted({d["payload"]["ticketId"] for d in decisions if d["decisionType"] in DISPUTE_ANSWERS})
    if tickets:
        seen = {d["decisionId"] for d in decisions}
        earlier = await conn.fetch(
            "SELECT payload, recorded_at FROM events WHERE event_type = ANY($1::text[])"
            " AND payload->'payload'->>'ticketId' = ANY($2::text[]) AND business_time < $3 ORDER BY global_position",
            [guard.DISPUTE_OPENED, *DISPUTE_ANSWERS], tickets, lookback_start(period, policy))
        decisions += [d for d in map(_decision, earlier) if d["decisionId"] not in seen]
    return decisions


def _decision(row) -> dict:
    payload = row["payload"] if isinstance(row["payload"], dict) else orjson.loads(row["payload"])
    return {**payload, "recordedAt": row["recorded_at"].isoformat()}

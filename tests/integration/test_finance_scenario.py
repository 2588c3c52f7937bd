"""A small but real back-office history for the finance tests: every decision here comes from
driving the pure deciders of billing_guard, dunning and cards (harness/), so the
field names the projector reads are the real ones. Also used by the e2e dashboard test."""
from __future__ import annotations

from datetime import datetime, timedelta

from services.common.eventstore.records import NewEvent
from services.common.eventstore.store import append
from services.common.timefmt import parse_rfc3339

from harness import cards as cf
from harness import dunning as df
from harness import guard as gf

T0 = gf.T0  # 2026-03-01 00:00 +08:00
PHONE = "13812345678"  # the calling number of every rated CDR: must never leave the API unmasked


def _dunning_input(decision: dict) -> gf.Event:
    """A dunning decision as the guard consumes it from dunning.decisions.v1."""
    return gf.Event(decision["decisionId"], "dunning.decisions.v1", parse_rfc3339(decision["businessTime"]), decision)


def guard_and_dunning() -> list[dict]:
    guard = gf.Guard()
    guard.feed(gf.tariff(1, T0 - timedelta(days=30)))
    cdrs = [guard.feed(gf.cdr("A1", start=T0 + timedelta(days=2, hours=h), seconds=120))[0] for h in (1, 2, 3)]
    for d in cdrs:
        assert d["decisionType"] == "guard.CdrRated", d
    guard.feed(gf.bill("A1", "B1", T0, 30_000))
    items = [d["payload"]["usageId"] for d in cdrs]
    opened = T0 + timedelta(days=33)
    # T1: transferred, replied, partially upheld (credit note), closed.
    guard.feed(gf.dispute("A1", "T1", "open", opened, billId="B1", disputedItems=items[:2],
                          disputedAmount=gf.fen(4_000), reason=f"never called, my number is {PHONE}"))
    guard.feed(gf.dispute("A1", "T1", "transfer", opened + timedelta(hours=1), toOwnerId="agent-2"))
    guard.feed(gf.dispute("A1", "T1", "acceptTransfer", opened + timedelta(hours=2), actor="agent-2"))
    guard.feed(gf.dispute("A1", "T1", "reply", opened + timedelta(days=3), actor="agent-2", replyText="checking"))
    guard.feed(gf.dispute("A1", "T1", "resolve", opened + timedelta(days=5), actor="agent-2",
                          resolution="partiallyUpheld", creditAmount=gf.fen(1_500)))
    guard.feed(gf.dispute("A1", "T1", "close", opened + timedelta(days=6), actor="agent-2"))
    # T2: never answered -> reply overdue after 15 days (D.REPLY_15D), still holding.
    guard.feed(gf.dispute("A2", "T2", "open", opened + timedelta(days=1), billId="B2", disputedItems=["X1"],
                          disputedAmount=gf.fen(2_500)))
    # T3: cancelled.
    guard.feed(gf.dispute("A3", "T3", "open", opened + timedelta(days=2), billId="B3", disputedItems=["X2"],
                          disputedAmount=gf.fen(800)))
    guard.feed(gf.dispute("A3", "T3", "cancel", opened + timedelta(days=2, hours=3)))
    guard.fire_due_timers(opened + timedelta(days=20))

    # Dunning: D1 first offence, reminded and delivered, escalated after 30 days (DN.ESCALATE).
    due = datetime(2026, 4, 15, 23, 59, tzinfo=df.SHANGHAI)
    d1 = df.Account()
    d1.feed(df.bill("D1", "DB1", due, 10_000))
    reminders = df.of_type(d1.fire_due_timers(due + timedelta(days=10)), "dunning.ReminderDue")
    d1.feed(df.delivery("D1", reminders[0]["decisionId"], "posted", due + timedelta(days=11),
                        channel=reminders[0]["payload"]["channel"]))
    [request] = df.of_type(d1.fire_due_timers(due + timedelta(days=31)), "dunning.SuspensionRequested")
    # The guard approves (CP4), the customer pays everything, restoration is ordered and its
    # 48 h deadline passes with no confirmation (CP4.RESTORE_48H).
    guard.feed(_dunning_input(request))
    paid_at = due + timedelta(days=35)
    guard.feed(df.payment("D1", "PAY-D1", paid_at, 20_000))
    guard.fire_due_timers(paid_at + timedelta(hours=49))
    guard.feed(gf.Event("ev-restored-D1", "billing.restoration.v1", paid_at + timedelta(hours=50),
                        {"accountId": "D1", "restorationOrderId": None, "completedAt": paid_at + timedelta(hours=50),
                         "networkSystem": "hlr-nj-02"}))
    # D2: paid 12 days late -> occurrence closed with a late fee (DN.LATE_FEE).
    d2 = df.Account()
    d2.feed(df.bill("D2", "DB2", due, 5_000))
    d2.fire_due_timers(due + timedelta(days=12))
    d2.feed(df.payment("D2", "PAY-D2", due + timedelta(days=12), 5_000, bill_id="DB2"))
    # D3: a bill due later, still open (a younger aging bucket).
    d3 = df.Account()
    d3.feed(df.bill("D3", "DB3", due + timedelta(days=25), 7_000))
    d3.fire_due_timers(due + timedelta(days=31))
    return guard.log + d1.log + d2.log + d3.log


def cards() -> list[dict]:
    world = cf.World()
    o1 = cf.serials("O1C", 4)
    o2 = cf.serials("O2C", 1)
    world.feed(cf.batch("BATCH-1", "O1", o1), cf.batch("BATCH-2", "O2", o2))
    for serial, outlet in ((o1[0], "O1"), (o1[1], "O1"), (o2[0], "O2")):
        world.feed(cf.activated(serial, outlet, at=cf.later(1)))
    world.feed(cf.used(o1[0], 300, at=cf.later(2)))
    world.feed(cf.complaint(o1[0], "O1", at=cf.later(3), complaint_id="CMP-1", wrongly=300))  # replaced
    world.feed(cf.complaint(o2[0], "O2", at=cf.later(4), complaint_id="CMP-2"))  # no stock: escalated
    world.feed(cf.complaint(o1[1], "O1", at=cf.later(5), complaint_id="CMP-3", charge_related=False))  # referred
    return world.log


def scenario() -> list[dict]:
    return guard_and_dunning() + cards()


def as_new_events(decisions: list[dict]) -> list[tuple[int, list[NewEvent]]]:
    """(expected stream version, [event]) per decision, in order, as the store's append takes them."""
    versions: dict[str, int] = {}
    out = []
    for d in decisions:
        stream = d["streamId"]
        out.append((versions.get(stream, 0), [NewEvent(
            event_id=d["decisionId"], stream_id=stream, event_type=d["decisionType"], service=d["service"],
            business_time=parse_rfc3339(d["businessTime"]), payload=d,
            causation_id=(d["causedBy"] or [None])[0], correlation_id=d.get("correlationId"),
        )]))
        versions[stream] = versions.get(stream, 0) + 1
    return out


async def store(conn, decisions: list[dict]) -> None:
    async with conn.transaction():
        await append(conn, as_new_events(decisions))


def test_the_scenario_produces_every_decision_the_dashboard_shows():
    kinds = {d["decisionType"] for d in scenario()}
    wanted = {
        "guard.DisputeOpened", "guard.DisputeTransferAccepted", "guard.DisputeReplied", "guard.DisputeReplyOverdue",
        "guard.DisputeResolved", "guard.CreditNoteIssued", "guard.DisputeClosed", "guard.DisputeCancelled",
        "guard.SuspensionApproved", "guard.RestorationOrdered", "guard.RestorationSlaMissed", "guard.RestorationCompleted", "guard.CdrRated",
        "dunning.OccurrenceOpened", "dunning.ReminderDue", "dunning.DeliveryRecorded", "dunning.SuspensionRequested",
        "dunning.OccurrenceClosed", "dunning.LateFeeCharged",
        "cards.CardReplaced", "cards.ComplaintEscalated", "cards.ComplaintReferred",
    }
    assert wanted <= kinds, sorted(wanted - kinds)

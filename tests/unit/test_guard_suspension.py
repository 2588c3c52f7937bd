"""CP4 arrears suspension (pure; the request shape is the guard's, see domain/suspension.py)."""
from __future__ import annotations

from datetime import timedelta

from harness.guard import T0, Event, Guard, customer_change, dispute, fen, of_type

DUE = T0
AT = DUE + timedelta(days=31)


def request(when=AT, overdue=5000, reminders=1, approval=None, n=[0]):
    n[0] += 1
    return Event(f"ev-susp-{n[0]}", "guard.suspensionRequest", when,
                 {"requestId": f"S{n[0]}", "accountId": "A1", "billId": "B1", "overdueMinor": overdue,
                  "paymentDueDate": DUE.isoformat(), "arrearsComputedAt": (when - timedelta(hours=1)).isoformat(),
                  "remindersDelivered": reminders, "agreedOverdueDays": None, "accountManagerApprovalRef": approval})


def payment(when, amount, status="received", n=[0]):
    n[0] += 1
    return Event(f"ev-pay-{n[0]}", "billing.payment.v1", when,
                 {"paymentId": f"P{n[0]}", "accountId": "A1", "billId": "B1", "amount": fen(amount),
                  "paymentDate": when, "status": status, "reversesPaymentId": None, "channel": "counter"})


def test_CP4_denial_names_every_reason_that_applied():
    g = Guard()
    g.feed(customer_change("A1", "importantFlag", None, "true", T0, role="accountManager", approver="op-2"))
    g.feed(dispute("A1", "K1", "open", T0 + timedelta(days=20), billId="B1", disputedItems=["L1"], disputedAmount=fen(5000)))
    g.feed(payment(AT - timedelta(minutes=30), 100, status="pending"))
    out = g.feed(request(when=DUE + timedelta(days=30), reminders=0))
    assert out[0]["decisionType"] == "guard.SuspensionDenied"
    assert out[0]["reasonCodes"] == ["NOT_OVERDUE_LONG_ENOUGH", "NOTHING_UNDISPUTED_OVERDUE", "PAYMENT_IN_FLIGHT",
                                     "NO_REMINDER_DELIVERED", "ACCOUNT_MANAGER_APPROVAL_MISSING"]


def test_CP4_approved_then_CP4_RESTORE_48H_on_payment_and_termination_never_after_restore():
    g = Guard()
    approved = g.feed(request())
    assert approved[0]["outcome"] == "approved"
    out = g.feed(payment(AT + timedelta(days=2), 5000))
    restore = of_type(out, "guard.RestorationOrdered")[0]
    assert restore["payload"]["restoreBy"] == (AT + timedelta(days=2, hours=48)).isoformat()
    fired = g.fire_due_timers(AT + timedelta(days=90))
    assert [d["decisionType"] for d in fired] == ["guard.RestorationSlaMissed"]


def test_CP4_TERMINATION_eligible_after_60_days_suspended_unpaid_never_automatic():
    g = Guard()
    g.feed(request())
    g.feed(payment(AT + timedelta(days=3), 1000))  # partial: no restoration
    assert g.fire_due_timers(AT + timedelta(days=59)) == []
    fired = g.fire_due_timers(AT + timedelta(days=60))
    assert fired[0]["decisionType"] == "guard.TerminationEligible" and fired[0]["payload"]["automatic"] is False


def test_CP4_request_from_dunning_decision_includes_late_fee_in_what_restores():
    g = Guard()
    decision = {"decisionId": "d-1", "decisionType": "dunning.SuspensionRequested", "businessTime": AT.isoformat(),
                "payload": {"accountId": "A1", "billId": "B1", "anchorDate": DUE.isoformat(), "overdueMinor": 5000,
                            "heldMinor": 0, "lateFeeToDateMinor": 465, "remindersDelivered": 1, "important": False}}
    out = g.feed(Event("d-1", "dunning.decisions.v1", AT, decision))
    assert out[0]["decisionType"] == "guard.SuspensionApproved" and out[0]["streamId"] == "guard-account-A1"
    assert of_type(g.feed(payment(AT + timedelta(days=1), 5000)), "guard.RestorationOrdered") == []
    assert of_type(g.feed(payment(AT + timedelta(days=1), 465)), "guard.RestorationOrdered")

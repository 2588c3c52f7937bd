"""The guard's side of the sample day: a tariff catalogue, planned works, customer-data
changes and disputes, so every checkpoint shows its main rules on the first run.

Payloads only; sample_day.py dates and publishes them. The default plan (the guard policy's
`defaultTariffId`) is priced, so every sample call is rated (CP2.EFFECTIVE_DATING).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFF_ID = "T-STD"  # the bundled guard policy's defaultTariffId
CUTOVER_SWITCH = "SW-05"  # only the cutover's own calls use it, so the window's effect is plain
CUTOVER_HOURS = (12, 13)


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


def _rate(usage: str, destination: str, fen: int, increment: int = 60, cap: int | None = None) -> dict:
    rate = {"usageType": usage, "destinationClass": destination, "ratePerMinuteMinor": fen,
            "incrementSeconds": increment, "connectFeeMinor": 0}
    if cap is not None:
        rate["capMinor"] = cap
    return rate


def tariff_versions(day: date) -> list[tuple[datetime, dict, str]]:
    """v1; v2 an increase with approval and filing (accepted, in force today); v3 an increase
    without them (rejected: CP2.INCREASE_NEEDS_APPROVAL)."""
    def version(number: int, published: date, effective: date, local: int, domestic: int, **refs) -> dict:
        return {
            "tariffId": TARIFF_ID, "version": number, "name": f"Standard voice plan v{number}",
            "publishedAt": at(published), "effectiveFrom": at(effective, 0),
            "freeAllowanceSeconds": 0,  # so a credited call is credited in full
            "rates": [_rate("voice", "local", local), _rate("voice", "domestic", domestic, cap=3_000),
                      _rate("sms", "local", 10, 1), _rate("sms", "domestic", 10, 1)],
            **({"replacesVersion": number - 1} if number > 1 else {}), **refs,
        }

    v1 = version(1, day - timedelta(days=60), day - timedelta(days=45), 15, 19)
    v2 = version(2, day - timedelta(days=20), day - timedelta(days=5), 18, 19,
                 approvalRef="PRICING-SAMPLE-017", filingRef="SAMPLE-FILING-2026-017")
    v3 = version(3, day - timedelta(days=2), day + timedelta(days=10), 18, 25)
    return [(v["publishedAt"], v, f"tariff-v{v['version']}") for v in (v1, v2, v3)]


def planned_works(day: date) -> list[tuple[datetime, dict, str]]:
    """One cleared cutover on today's noon (its calls are flagged, CP5.WINDOW_CDRS) and one
    blocked for want of approval and notice (CP5.PROVINCIAL, CP5.NOTICE_72H)."""
    start, end = (at(day, hour) for hour in CUTOVER_HOURS)
    cleared = {
        "workId": f"WK-{day:%Y%m%d}-01", "action": "planned", "workKind": "cutover", "provinces": ["江苏"],
        "areas": ["南京市"], "switchIds": [CUTOVER_SWITCH], "plannedStart": start, "plannedEnd": end,
        "expectedImpactHours": 1, "affectsImportantCustomers": False,
        "approvals": [{"authority": "provincial", "reference": "SAMPLE-NOC-2026-001"}],
        "notices": [{"channel": "communityNotice", "sentAt": at(day - timedelta(days=7))}],
        "affectedAccountIds": [],
    }
    blocked = {**cleared, "workId": f"WK-{day:%Y%m%d}-02", "workKind": "softwareUpgrade", "switchIds": ["SW-09"],
               "plannedStart": at(day + timedelta(days=1), 1), "plannedEnd": at(day + timedelta(days=1), 3),
               "approvals": [], "notices": []}
    when = at(day - timedelta(days=6))
    return [(when, cleared, "work-cleared"), (when, blocked, "work-blocked")]


def customer_changes(day: date, account: str) -> list[tuple[datetime, dict, str]]:
    """A credit-level change with a second approver (accepted) and one without (CP1.FOUR_EYES)."""
    base = {"accountId": account, "field": "creditLevel", "oldValue": None, "newValue": "B",
            "operatorId": "OP-SAMPLE-01", "operatorRole": "creditOfficer", "channel": "backOffice",
            "reason": "annual credit review"}
    approved = {**base, "requestId": f"CRM-{account}-1", "approverId": "OP-SAMPLE-02"}
    unapproved = {**base, "requestId": f"CRM-{account}-2", "oldValue": "B", "newValue": "A"}
    return [(at(day, 8, 5), approved, "crm-approved"), (at(day, 8, 10), unapproved, "crm-unapproved")]


def cutover_calls(day: date, account: str) -> list[tuple[datetime, dict, str]]:
    """Two calls inside the cleared window: rated but flagged for verification (CP5.WINDOW_CDRS)."""
    calls = []
    for i, minute in enumerate((10, 25)):
        start = at(day, CUTOVER_HOURS[0], minute)
        calls.append((start, {
            "usageId": f"CDR-{account}-cut{i}", "switchId": CUTOVER_SWITCH, "originId": f"{account}-cut{i}",
            "sequenceNumber": i + 1, "accountId": account, "callingNumber": "13800009999",
            "calledNumber": "13900008888", "usageType": "voice", "destinationClass": "local",
            "startDateTime": start, "endDateTime": start + timedelta(seconds=420), "durationSeconds": 420,
            "collection": "online",
        }, f"{account}-cdr-cut{i}"))
    return calls


def insane_call(day: date, account: str) -> tuple[datetime, dict, str]:
    """A call that ends before it starts: a dead letter with the reason (CP3.SANITY)."""
    start = at(day, 11)
    return start, {
        "usageId": f"CDR-{account}-bad", "switchId": "SW-01", "originId": f"{account}-bad", "sequenceNumber": 1,
        "accountId": account, "callingNumber": "13800007777", "calledNumber": "13900006666", "usageType": "voice",
        "destinationClass": "local", "startDateTime": start, "endDateTime": start - timedelta(seconds=60),
        "durationSeconds": -60, "collection": "online",
    }, f"{account}-cdr-bad"


def disputes(day: date, cutover_account: str, cutover_bill: str, held_account: str, held_bill: str,
             held_fen: int) -> list[tuple[datetime, dict, str]]:
    """A dispute of the cutover calls (credited at once, D.AUTO_CREDIT) and one of an overdue
    bill (held while open, D.HOLD) that gets its first reply (D.REPLY_15D)."""
    def ticket(number: int, account: str, bill: str, items: list[str], fen: int) -> dict:
        return {"ticketId": f"TT-{day:%Y%m%d}-{number:04d}", "ticketType": "Bill Dispute", "action": "open",
                "accountId": account, "billId": bill, "disputedItems": items,
                "disputedAmount": {"amountMinor": fen, "currency": "CNY"}, "reason": "customer disputes charges",
                "channel": "hotline", "actorId": "CSR-SAMPLE-01"}

    credited = ticket(1, cutover_account, cutover_bill, [f"CDR-{cutover_account}-cut0"], 126)
    held = ticket(2, held_account, held_bill, [f"CDR-{held_account}-0"], held_fen)
    reply = {"ticketId": held["ticketId"], "ticketType": "Bill Dispute", "action": "reply", "accountId": held_account,
             "reason": "first reply", "channel": "sms", "actorId": "CSR-SAMPLE-01",
             "replyText": "We are checking the switch records and will answer within 5 working days."}
    return [(at(day, 14), credited, "dispute-credited"), (at(day, 14, 5), held, "dispute-held"),
            (at(day, 15), reply, "dispute-reply")]

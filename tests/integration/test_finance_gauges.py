"""The finance API's domain gauges (services/finance/gauges.py) through the real thing: decisions
made by the pure deciders, stored in real Postgres, projected by the API's own projector loop,
read from /metrics over HTTP. Each gauge must equal the number the scenario was built to give,
the matching SQL view, and the same number counted from the API's own lists."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.db import connect
from services.common.eventstore.store import append
from services.common.localstack.embedded import free_port
from services.common.timefmt import parse_rfc3339
from services.finance import tokens
from services.finance.api import serve
from services.finance.schema import ensure_schema
from services.finance.settings import ApiSettings

from harness import cards as cf
from harness import dunning as df
from harness import guard as gf
from .test_finance_scenario import _dunning_input, as_new_events

pytestmark = pytest.mark.integration

SECRET = "gauges-secret-0123456789abcdef-0123456789"
AS_OF = datetime(2026, 9, 1, 12, 0, tzinfo=df.SHANGHAI)  # the latest business time of wave 1
LATER = AS_OF + timedelta(hours=1)  # wave 2


def days(n: float) -> datetime:
    return AS_OF - timedelta(days=n)


class History:
    """The three services' deciders over one timeline; guard timers fire in business-time order."""

    def __init__(self):
        self.guard = gf.Guard()
        self.dunning: list[df.Account] = []
        self.cards = cf.World()

    def guard_at(self, when: datetime, event) -> list[dict]:
        self.guard.fire_due_timers(when)
        return self.guard.feed(event)

    def arrears(self, account: str, due: datetime, fen: int) -> df.Account:
        d = df.Account()
        d.feed(df.bill(account, f"B-{account}", due, fen))
        self.dunning.append(d)
        return d

    def suspended(self, account: str, due: datetime, fen: int = 10_000) -> df.Account:
        """Reminded, escalated after 30 days (DN.ESCALATE) and suspended by the guard (CP4)."""
        d = self.arrears(account, due, fen)
        [reminder] = df.of_type(d.fire_due_timers(due + timedelta(days=10)), "dunning.ReminderDue")
        d.feed(df.delivery(account, reminder["decisionId"], "posted", due + timedelta(days=11),
                           channel=reminder["payload"]["channel"]))
        [request] = df.of_type(d.fire_due_timers(due + timedelta(days=31)), "dunning.SuspensionRequested")
        [approved] = self.guard_at(due + timedelta(days=31), _dunning_input(request))
        assert approved["decisionType"] == "guard.SuspensionApproved", approved
        return d

    def pays(self, d: df.Account, account: str, when: datetime) -> None:
        """Pays arrears and late fee: dunning closes the occurrence, the guard orders restoration."""
        pay = df.payment(account, f"PAY-{account}", when, 20_000)
        assert "guard.RestorationOrdered" in [x["decisionType"] for x in self.guard_at(when, pay)]
        d.feed(pay)

    def restored(self, account: str, when: datetime) -> list[dict]:
        return self.guard_at(when, gf.Event(f"ev-restored-{account}", "billing.restoration.v1", when, {
            "accountId": account, "restorationOrderId": None, "completedAt": when, "networkSystem": "hlr-nj-02"}))

    def log(self) -> list[dict]:
        return self.guard.log + [x for d in self.dunning for x in d.log] + self.cards.log


def gauge_scenario() -> tuple[list[dict], list[dict]]:
    """Wave 1 ends at AS_OF; wave 2 (an hour later) answers a dispute and completes a restoration."""
    h = History()
    # Disputes (D.OPEN, D.HOLD, D.REPLY_15D, D.RESOLVE); the reply deadline is 15 days.
    dispute = gf.dispute
    h.guard_at(days(50), dispute("A-Q5", "Q5", "open", days(50), billId="B-Q5", disputedItems=["X5"],
                                 disputedAmount=gf.fen(5_000)))
    h.guard_at(days(45), dispute("A-Q5", "Q5", "reply", days(45), replyText="checking"))
    h.guard_at(days(44), dispute("A-Q5", "Q5", "resolve", days(44), resolution="upheld"))
    h.guard_at(days(43), dispute("A-Q5", "Q5", "close", days(43)))  # closed: not open
    h.guard_at(days(40), dispute("A-Q3", "Q3", "open", days(40), billId="B-Q3", disputedItems=["X3"],
                                 disputedAmount=gf.fen(3_000)))
    h.guard_at(days(35), dispute("A-Q7", "Q7", "open", days(35), billId="B-Q7", disputedItems=["X7"],
                                 disputedAmount=gf.fen(7_000)))
    h.guard_at(days(30), dispute("A-Q4", "Q4", "open", days(30), billId="B-Q4", disputedItems=["X4"],
                                 disputedAmount=gf.fen(4_000)))
    h.guard_at(days(28), dispute("A-Q4", "Q4", "reply", days(28), replyText="checking"))
    h.guard_at(days(25), dispute("A-Q4", "Q4", "resolve", days(25), resolution="rejected"))  # resolved, not closed
    # Q3's deadline passed on day -25: overdue, then answered late on day -20.
    [late] = h.guard_at(days(20), dispute("A-Q3", "Q3", "reply", days(20), replyText="sorry"))
    assert late["outcome"] == "answeredLate", late
    h.guard_at(days(20), dispute("A-Q2", "Q2", "open", days(20), billId="B-Q2", disputedItems=["X2"],
                                 disputedAmount=gf.fen(2_000)))
    h.guard_at(days(10), dispute("A-Q6", "Q6", "open", days(10), billId="B-Q6", disputedItems=["X6"],
                                 disputedAmount=gf.fen(6_000)))
    h.guard_at(days(9), dispute("A-Q6", "Q6", "cancel", days(9)))
    h.guard_at(days(3), dispute("A-Q1", "Q1", "open", days(3), billId="B-Q1", disputedItems=["X1"],
                                disputedAmount=gf.fen(1_000)))

    # Suspensions and restorations (CP4, CP4.RESTORE_48H: 48 h from the payment).
    r3 = h.suspended("ACC-R3", days(80))
    h.pays(r3, "ACC-R3", days(20))
    h.guard.fire_due_timers(days(20) + timedelta(hours=48))  # missed
    h.restored("ACC-R3", days(20) + timedelta(hours=50))  # then completed late
    r4 = h.suspended("ACC-R4", days(70))
    h.pays(r4, "ACC-R4", days(10))
    h.restored("ACC-R4", days(10) + timedelta(hours=10))  # within the SLA
    r2 = h.suspended("ACC-R2", days(60))
    h.pays(r2, "ACC-R2", days(5))  # due day -3: missed, still pending
    s5 = h.suspended("ACC-S5", days(45), fen=9_000)  # never pays: still suspended, its arrears open (31-60)
    r1 = h.suspended("ACC-R1", days(40))
    h.pays(r1, "ACC-R1", days(1))  # due in a day: pending within the SLA
    # Open arrears in each aging bucket (DN.OCCURRENCE), and one paid in full.
    h.arrears("ACC-E1", days(10), 1_100)
    h.arrears("ACC-E2", days(45), 2_200)
    h.arrears("ACC-E3", days(75), 3_300)
    h.arrears("ACC-E4", days(100), 4_400)
    e5 = h.arrears("ACC-E5", days(100), 5_500)
    e5.feed(df.payment("ACC-E5", "PAY-E5", days(50), 5_500))
    for d in (r1, r2, r3, r4, s5, *h.dunning):
        d.fire_due_timers(AS_OF)
    h.guard.fire_due_timers(AS_OF)

    # Cards: O1 has two cards in stock, O2 none (C.REPLACE_NOW, C.STOCK, C.NOT_ELIGIBLE).
    o1, o2 = cf.serials("G1C", 5), cf.serials("G2C", 2)
    h.cards.feed(cf.batch("GB-1", "OUT-1", o1), cf.batch("GB-2", "OUT-2", o2))
    for serial, outlet in ((o1[0], "OUT-1"), (o1[1], "OUT-1"), (o1[2], "OUT-1"), (o2[0], "OUT-2"), (o2[1], "OUT-2")):
        h.cards.feed(cf.activated(serial, outlet, at=cf.later(1)))
    h.cards.feed(cf.complaint(o1[0], "OUT-1", at=cf.later(3), complaint_id="GC-1"))  # replaced
    h.cards.feed(cf.complaint(o1[1], "OUT-1", at=cf.later(4), complaint_id="GC-2"))  # replaced: O1 now empty
    h.cards.feed(cf.complaint(o1[2], "OUT-1", at=cf.later(5), complaint_id="GC-3"))  # escalated: no stock
    h.cards.feed(cf.complaint(o2[0], "OUT-2", at=cf.later(6), complaint_id="GC-4"))  # escalated: no stock
    h.cards.feed(cf.complaint(o2[1], "OUT-2", at=AS_OF, complaint_id="GC-5", charge_related=False))  # referred
    wave1 = h.log()

    h.guard_at(LATER, dispute("A-Q2", "Q2", "reply", LATER, replyText="answered at last"))
    h.restored("ACC-R2", LATER)
    wave2 = [d for d in h.log() if d["decisionId"] not in {x["decisionId"] for x in wave1}]
    return wave1, wave2


# What the scenario was built to show, as (metric, labels) -> value.
BUCKETS = ("0-30", "31-60", "61-90", "90+")
WAVE1 = {
    ("wuguan_finance_disputes_open", ("acknowledged",)): 4,  # Q1, Q2, Q3, Q7
    ("wuguan_finance_disputes_open", ("resolved",)): 1,  # Q4
    ("wuguan_finance_disputes_held_fen", ()): 1_000 + 2_000 + 3_000 + 7_000,
    ("wuguan_finance_dispute_replies_overdue", ()): 2,  # Q2, Q7
    ("wuguan_finance_dispute_reply_sla_breaches", ()): 3,  # Q2, Q3, Q7
    ("wuguan_finance_restorations_pending", ()): 2,  # R1, R2
    ("wuguan_finance_restorations_over_sla", ("pending",)): 1,  # R2
    ("wuguan_finance_restorations_over_sla", ("completed",)): 1,  # R3
    ("wuguan_finance_suspensions_in_force", ()): 1,  # S5
    ("wuguan_finance_arrears_open", ("0-30",)): 1,
    ("wuguan_finance_arrears_open", ("31-60",)): 2,
    ("wuguan_finance_arrears_open", ("61-90",)): 1,
    ("wuguan_finance_arrears_open", ("90+",)): 1,
    ("wuguan_finance_arrears_overdue_fen", ("0-30",)): 1_100,
    ("wuguan_finance_arrears_overdue_fen", ("31-60",)): 2_200 + 9_000,
    ("wuguan_finance_arrears_overdue_fen", ("61-90",)): 3_300,
    ("wuguan_finance_arrears_overdue_fen", ("90+",)): 4_400,
    ("wuguan_finance_card_complaints", ("replaced",)): 2,
    ("wuguan_finance_card_complaints", ("escalated",)): 2,
    ("wuguan_finance_card_complaints", ("referred",)): 1,
    ("wuguan_finance_projection_as_of_timestamp_seconds", ()): AS_OF.timestamp(),
}
WAVE2 = WAVE1 | {
    ("wuguan_finance_dispute_replies_overdue", ()): 1,  # Q2 answered (late): only Q7 left
    ("wuguan_finance_restorations_pending", ()): 1,  # R1
    ("wuguan_finance_restorations_over_sla", ("pending",)): 0,
    ("wuguan_finance_restorations_over_sla", ("completed",)): 2,  # R3, R2
    ("wuguan_finance_projection_as_of_timestamp_seconds", ()): LATER.timestamp(),
}
# The closed label sets: nothing else may ever appear as a label value (A.PRIVACY, cardinality).
LABEL_VALUES = {
    "wuguan_finance_disputes_open": {"acknowledged", "resolved"},
    "wuguan_finance_restorations_over_sla": {"pending", "completed"},
    "wuguan_finance_arrears_open": set(BUCKETS),
    "wuguan_finance_arrears_overdue_fen": set(BUCKETS),
    "wuguan_finance_card_complaints": {"replaced", "escalated", "referred"},
}


def domain_gauges(text: str) -> dict:
    """(metric, label values) -> value for every wuguan_finance_* gauge on a /metrics page."""
    out = {}
    for family in text_string_to_metric_families(text):
        if family.type == "gauge" and family.name.startswith("wuguan_finance_"):
            for sample in family.samples:
                out[(sample.name, tuple(sample.labels.values()))] = sample.value
    return out


async def scrape_at(http: aiohttp.ClientSession, base: str, position: int) -> tuple[str, dict]:
    """/metrics once the gauges were read at `position` (the projector and the refresh run on
    their own schedule)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with http.get(f"{base}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        gauges = domain_gauges(text)
        if gauges.get(("wuguan_finance_gauges_position", ())) == position:
            return text, gauges
        assert asyncio.get_running_loop().time() < deadline, f"gauges never reached position {position}"
        await asyncio.sleep(0.1)


async def api_get(http: aiohttp.ClientSession, base: str, path: str, **params) -> dict:
    headers = {"Authorization": "Bearer " + tokens.mint("gauges-test", "finance", 600, SECRET, time.time())}
    async with http.get(f"{base}{path}", headers=headers, params=params) as response:
        assert response.status == 200, (path, response.status, await response.text())
        return await response.json()


async def from_the_api(http: aiohttp.ClientSession, base: str) -> dict:
    """The same numbers counted from the API's lists and summaries, independently of gauges.py."""
    disputes = (await api_get(http, base, "/api/disputes", limit="500"))["items"]
    restorations = (await api_get(http, base, "/api/restorations", limit="500"))["items"]
    suspensions = (await api_get(http, base, "/api/suspensions", limit="500", status="approved"))["items"]
    aging = (await api_get(http, base, "/api/arrears/aging"))["items"]
    outlets = (await api_get(http, base, "/api/card-replacements/by-outlet"))["items"]
    dashboard = await api_get(http, base, "/api/dashboard")
    status = Counter(d["status"] for d in disputes)
    held = [d for d in disputes if d["status"] == "acknowledged"]
    out = {
        ("wuguan_finance_disputes_open", ("acknowledged",)): status["acknowledged"],
        ("wuguan_finance_disputes_open", ("resolved",)): status["resolved"],
        ("wuguan_finance_disputes_held_fen", ()): sum(d["heldMinor"] for d in held),
        ("wuguan_finance_dispute_replies_overdue", ()): sum(
            1 for d in held if d["replyOverdue"] and d["repliedAt"] is None),
        ("wuguan_finance_dispute_reply_sla_breaches", ()): dashboard["slaBreaches"]["disputeReplyOverdue"],
        ("wuguan_finance_restorations_pending", ()): sum(1 for r in restorations if r["completedAt"] is None),
        ("wuguan_finance_restorations_over_sla", ("pending",)): sum(
            1 for r in restorations if r["completedAt"] is None and r["slaMissedAt"] is not None),
        ("wuguan_finance_restorations_over_sla", ("completed",)): sum(
            1 for r in restorations if r["completion"] == "late"),
        ("wuguan_finance_suspensions_in_force", ()): sum(1 for s in suspensions if s["restorationOrderedAt"] is None),
        ("wuguan_finance_projection_as_of_timestamp_seconds", ()): parse_rfc3339(dashboard["asOf"]).timestamp(),
        ("wuguan_finance_gauges_position", ()): dashboard["position"],
    }
    for b in aging:
        out[("wuguan_finance_arrears_open", (b["bucket"],))] = b["count"]
        out[("wuguan_finance_arrears_overdue_fen", (b["bucket"],))] = b["amountMinor"]
    for outcome in ("replaced", "escalated", "referred"):
        out[("wuguan_finance_card_complaints", (outcome,))] = sum(o[outcome] for o in outlets)
    return out


async def from_the_views(conn) -> dict:
    aging = await conn.fetch("SELECT bucket, occurrences, overdue_minor FROM finance.v_arrears_aging")
    out = {}
    for r in aging:
        out[("wuguan_finance_arrears_open", (r["bucket"],))] = r["occurrences"]
        out[("wuguan_finance_arrears_overdue_fen", (r["bucket"],))] = r["overdue_minor"]
    out[("wuguan_finance_dispute_reply_sla_breaches", ())] = await conn.fetchval(
        "SELECT count(*) FROM finance.v_disputes WHERE reply_overdue")
    # The view's sla_missed also counts a completion reported after the deadline fired but dated
    # within it; the scenario has none, so here both notions agree.
    out[("wuguan_finance_restorations_over_sla", ("completed",))] = await conn.fetchval(
        "SELECT count(*) FROM finance.v_restorations WHERE sla_missed AND completed_at IS NOT NULL")
    return out


def test_the_scenario_holds_what_the_gauges_are_meant_to_show():
    wave1, wave2 = gauge_scenario()
    kinds = Counter(d["decisionType"] for d in wave1)
    assert kinds["guard.DisputeReplyOverdue"] == 3 and kinds["guard.RestorationSlaMissed"] == 2
    assert kinds["cards.ComplaintEscalated"] == 2 and kinds["cards.CardReplaced"] == 2
    assert max(parse_rfc3339(d["businessTime"]) for d in wave1) == AS_OF
    assert sorted(d["decisionType"] for d in wave2) == ["guard.DisputeReplied", "guard.RestorationCompleted"]
    assert {d["outcome"] for d in wave2} == {"answeredLate", "late"}


class RunningApi:
    """`wuguan api`'s serve() in this process, over a database holding the decisions given."""

    def __init__(self, conn, decisions: list[dict], port: int):
        self.conn, self.decisions, self.port = conn, list(decisions), port
        self.base = f"http://127.0.0.1:{port}"

    async def append(self, decisions: list[dict]) -> None:
        """Store more decisions after the ones already stored (stream versions continue)."""
        events = as_new_events(self.decisions + decisions)[len(self.decisions):]
        async with self.conn.transaction():
            await append(self.conn, events)
        self.decisions += decisions


@contextlib.asynccontextmanager
async def serve_api(database_url: str, decisions: list[dict]):
    conn = await connect(database_url)
    await ensure_schema(conn)
    api = RunningApi(conn, [], free_port())
    await api.append(decisions)
    settings = ApiSettings.from_env({
        "DATABASE_URL": database_url, "WUGUAN_API_SECRET": SECRET, "WUGUAN_API_PORT": str(api.port),
        "WUGUAN_WEB_HOST": "127.0.0.1", "WUGUAN_PROJECTOR_INTERVAL_MS": "50", "WUGUAN_GAUGES_INTERVAL_MS": "0"})
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(settings, ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield api
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)
        await conn.close()


async def test_gauges_on_metrics_equal_the_scenario_the_views_and_the_api_d_reply_15d_cp4_restore_48h(
        database_url):
    """D.REPLY_15D, CP4.RESTORE_48H, DN.OCCURRENCE, C.STOCK: the domain gauges of the running API
    follow the projections after each catch-up, down as well as up, and carry no personal data
    (A.PRIVACY)."""
    wave1, wave2 = gauge_scenario()

    async def check(http: aiohttp.ClientSession, api: RunningApi, expected: dict) -> None:
        text, gauges = await scrape_at(http, api.base, len(api.decisions))
        for key, value in expected.items():
            assert gauges.get(key) == value, (key, gauges.get(key), value)
        for key, value in (await from_the_api(http, api.base)).items():
            assert gauges.get(key) == value, ("api", key, gauges.get(key), value)
        for key, value in (await from_the_views(api.conn)).items():
            assert gauges.get(key) == value, ("view", key, gauges.get(key), value)
        # Only the closed label sets, and every value of each, zeros included.
        for name, values in LABEL_VALUES.items():
            assert {labels for (n, labels) in gauges if n == name} == {(v,) for v in values}, name
        assert gauges[("wuguan_finance_projector_caught_up_timestamp_seconds", ())] > 0
        for personal in ("A-Q", "ACC-", "OUT-", "G1C", "GC-"):  # accounts, outlets, cards, complaints
            assert personal not in text, personal

    async with serve_api(database_url, wave1) as api, aiohttp.ClientSession() as http:
        await check(http, api, WAVE1)
        await api.append(wave2)
        await check(http, api, WAVE2)  # read again after a later catch-up: some go down

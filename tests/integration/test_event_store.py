"""The event store on a real Postgres: append-only, optimistic concurrency, commit-ordered
positions, hash chain and `verify` (A.APPEND_ONLY, A.TAMPER_EVIDENT)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from services.common.db import connect, create_pool
from services.common.eventstore import store
from services.common.eventstore.migrate import migrate
from services.common.eventstore.records import NewEvent
from services.common.eventstore.verify import verify_chain

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def new(stream: str, n: int, **payload) -> NewEvent:
    return NewEvent(
        event_id=str(uuid.uuid4()), stream_id=stream, event_type="test.Happened", service="dunning",
        business_time=T0, payload={"n": n, **payload}, causation_id="input-1",
    )


async def append(conn, expected: int, events):
    async with conn.transaction():
        return await store.append(conn, [(expected, events)])


async def test_migrations_are_idempotent(conn):
    assert await migrate(conn) == []


async def test_append_and_read_a_stream_in_order(conn):
    await append(conn, 0, [new("s-1", 1), new("s-1", 2)])
    await append(conn, 2, [new("s-1", 3)])
    events = await store.read_stream(conn, "s-1")
    assert [e.payload["n"] for e in events] == [1, 2, 3]
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert [e.global_position for e in events] == [1, 2, 3]


async def test_optimistic_concurrency_rejects_a_stale_writer(conn):
    await append(conn, 0, [new("s-1", 1)])
    with pytest.raises(store.ConcurrencyConflict):
        await append(conn, 0, [new("s-1", 2)])
    assert len(await store.read_stream(conn, "s-1")) == 1


def on(chain: str, event: NewEvent) -> NewEvent:
    return event._replace(chain_id=chain)


async def test_concurrent_writers_of_one_chain_keep_it_whole(database_url, conn):
    pool = await create_pool(database_url, role="wuguan_service", max_size=8)

    async def writer(i: int):
        async with pool.acquire() as c, c.transaction():
            await store.append(c, [(0, [on(f"dunning/t/{i % 2}", new(f"w-{i}", 1)), on(f"dunning/t/{i % 2}", new(f"w-{i}", 2))])])
            await asyncio.sleep(0.01)  # hold the transaction open while others queue

    await asyncio.gather(*(writer(i) for i in range(20)))
    await pool.close()
    # numbered 1, 2, 3 ... in position order: the order a chain's anchors rely on (migration 0015)
    seqs = await conn.fetch("SELECT chain_id, array_agg(chain_seq ORDER BY global_position) AS seqs FROM events"
                            " GROUP BY 1")
    assert {r["chain_id"]: list(r["seqs"]) for r in seqs} == {"dunning/t/0": list(range(1, 21)),
                                                              "dunning/t/1": list(range(1, 21))}
    report = await verify_chain(conn)
    assert report.ok, report.problems
    assert report.chains_checked == 3  # the two, and the (empty) chain of the log before chains


@pytest.mark.parametrize("known", [True, False], ids=["known chain", "chain's first append"])
async def test_a_chain_s_positions_rise_with_its_sequence_numbers(database_url, conn, known):
    """An append takes its positions only once it holds its chains' heads: a writer that queues
    behind a chain's head takes positions after those of every append ahead of it, so a chain's
    events can be found by position between its anchors (store.chain_rows_sql, migration 0015).
    Also when the queued append is the chain's first too, and waits for the head another creates."""
    if known:
        await append(conn, 0, [on("guard/cdr/0", new("a-0", 1))])
    ahead, queued = await connect(database_url), await connect(database_url)
    try:
        holding = ahead.transaction()
        await holding.start()
        await store.append(ahead, [(0, [on("guard/cdr/0", new("a-1", 1))])])  # holds the chain's head
        behind = queued.transaction()
        await behind.start()
        waiting = asyncio.create_task(store.append(queued, [(0, [on("guard/cdr/0", new("a-2", 1))])]))
        await _until_waiting_for_a_lock(conn, queued)
        await store.append(ahead, [(1, [on("guard/cdr/0", new("a-1", 2))])])  # positions taken meanwhile
        await holding.commit()
        await asyncio.wait_for(waiting, timeout=5)
        await behind.commit()
    finally:
        await ahead.close()
        await queued.close()
    rows = await conn.fetch("SELECT stream_id, chain_seq FROM events ORDER BY global_position")
    assert [tuple(r) for r in rows] == [("a-0", 1)] * known + [("a-1", 1 + known), ("a-1", 2 + known),
                                                               ("a-2", 3 + known)]
    assert (await verify_chain(conn)).ok


async def test_a_chain_s_events_are_read_by_sequence_number_through_its_anchors(conn):
    """No index holds every decision's chain (migration 0015): a run of a chain's events, read
    between its anchors' positions by the primary key, is every event of that run in order,
    whatever other chains appended between them and wherever the run starts and ends."""
    chains = ("guard/cdr/0", "guard/cdr/1", "guard/cdr/2")
    sizes = {c: 0 for c in chains}
    for n in range(150):  # appends of several sizes, the chains' events interleaved
        chain = chains[n % 3]
        batch = 1 + (n * 5) % 11
        await append(conn, sizes[chain], [on(chain, new(chain, sizes[chain] + k)) for k in range(batch)])
        sizes[chain] += batch
    indexed = await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'events'"
                                  " AND indexdef LIKE '%chain%'")
    assert indexed == 0
    query = store.chain_rows_sql("chain_seq, stream_version")
    for chain in chains:
        assert sizes[chain] > 3 * 64
        for after, upto, limit in ((0, sizes[chain], 1000), (63, 65, 10), (64, 64 + 128, 1000), (70, 200, 5),
                                   (sizes[chain] - 1, sizes[chain], 1), (sizes[chain], sizes[chain] + 9, 9)):
            rows = await conn.fetch(query, chain, after, upto, limit)
            wanted = list(range(after + 1, min(upto, sizes[chain]) + 1))[:limit]
            assert [r["chain_seq"] for r in rows] == wanted
            assert [r["stream_version"] for r in rows] == wanted  # each stream here is its chain's
    plan = await _plan(conn, query, "guard/cdr/0", 100, 110, 10)
    assert "chain_anchors_pkey" in plan and "events_pkey" in plan and "Seq Scan" not in plan, plan
    await conn.execute(f"PREPARE segments(text, bigint, bigint, bigint) AS {query}")
    await conn.execute("SET plan_cache_mode = force_generic_plan")  # as asyncpg's statements end up
    generic = "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE segments('guard/cdr/0', 100, 110, 10)"))
    assert "chain_anchors_pkey" in generic and "events_pkey" in generic and "Seq Scan" not in generic, generic
    await conn.execute("RESET plan_cache_mode")


async def test_migration_0015_derives_the_anchors_appends_write(conn):
    """A store from before anchors gets from the migration the anchors its appends would have
    written: each transaction's first event of a chain, and every 64th."""
    for n in range(12):
        chain = f"guard/cdr/{n % 2}"
        await append(conn, (n // 2) * 30, [on(chain, new(chain, k)) for k in range(30)])
    written = [tuple(r) for r in await conn.fetch("SELECT * FROM chain_anchors ORDER BY 1, 2")]
    assert len(written) == 12 + 2 * 2  # a run each, and the 65th and 129th of each chain
    await _as_superuser_bypassing_triggers(conn, "DELETE FROM chain_anchors")
    async with conn.transaction():
        await conn.execute(resources.files("services.common.eventstore").joinpath(
            "migrations", "0015_chain_anchors.sql").read_text())
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM chain_anchors ORDER BY 1, 2")] == written


async def test_a_chain_that_grows_seldom_is_read_without_the_log_between_its_events(conn):
    """An append's first event of a chain is an anchor: reading the newest events of a chain that
    grows a few a day passes over what the other chains appended since its append, not since its
    64th event before."""
    await append(conn, 0, [on("guard/tariffs/0", new("tariffs", n)) for n in (1, 2)])
    for n in range(30):  # the busy chains fill the log
        await append(conn, n * 20, [on("guard/cdr/0", new("cdrs", n * 20 + k)) for k in range(20)])
    await append(conn, 2, [on("guard/tariffs/0", new("tariffs", 3))])
    rows = await conn.fetch(store.chain_rows_sql("chain_seq"), "guard/tariffs/0", 2, 3, 1)
    assert [r["chain_seq"] for r in rows] == [3]
    plan = await _plan(conn, store.chain_rows_sql("chain_seq"), "guard/tariffs/0", 2, 3, 1, analyze=True)
    assert "Rows Removed by Filter" not in plan, plan  # no busy chain's row read to find it


async def _plan(conn, query: str, chain: str, after: int, upto: int, limit: int, analyze: bool = False) -> str:
    bound = query.replace("$1", f"'{chain}'").replace("$2", str(after)).replace("$3", str(upto)).replace("$4", str(limit))
    return "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {'(ANALYZE) ' if analyze else ''}{bound}"))


async def test_migration_0015_refuses_a_store_whose_chain_positions_do_not_rise(conn):
    """A chain read through its anchors must have positions that rise with its sequence numbers:
    an upgrade of a store where they do not stops, naming the event, rather than misread it."""
    await append(conn, 0, [on("dunning/t/0", new("s-1", n)) for n in (1, 2, 3)])
    migration = resources.files("services.common.eventstore").joinpath(
        "migrations", "0015_chain_anchors.sql").read_text()
    async with conn.transaction():
        await conn.execute(migration)  # a store written in order: nothing to refuse, and it runs twice
    await _as_superuser_bypassing_triggers(conn, "UPDATE events SET chain_seq = 3 - chain_seq WHERE global_position < 3")
    with pytest.raises(asyncpg.DataCorruptedError, match="chain dunning/t/0 holds event 2 at position 1"):
        async with conn.transaction():
            await conn.execute(migration)


async def _until_waiting_for_a_lock(conn, waiter) -> None:
    pid = waiter.get_server_pid()
    for _ in range(500):
        if await conn.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second writer never waited for the chain's head")


async def test_two_partitions_append_concurrently(database_url, conn):
    """An open transaction on one partition's chain does not hold up an append on another's:
    there is no lock all appends share (issue 13)."""
    first, second = await connect(database_url), await connect(database_url)
    try:
        slow = first.transaction()
        await slow.start()
        await store.append(first, [(0, [on("guard/cdr/0", new("a-1", 1))])])
        async with second.transaction():  # would wait for `slow` to end if appends were serialised
            await asyncio.wait_for(store.append(second, [(0, [on("guard/cdr/1", new("a-2", 1))])]), timeout=5)
        await slow.commit()
    finally:
        await first.close()
        await second.close()
    assert (await verify_chain(conn)).ok


async def test_a_reader_following_commit_order_never_skips_a_late_commit(database_url, conn):
    """Positions no longer follow commit order; (tx_id, position) read up to the oldest running
    transaction does (store.committed_after)."""
    early, late = await connect(database_url), await connect(database_url)
    query = f"SELECT global_position FROM {store.committed_after('100')} ORDER BY {store.COMMIT_ORDER}"
    try:
        open_tx = early.transaction()
        await open_tx.start()
        await store.append(early, [(0, [on("x/t/0", new("early", 1))])])  # takes position 1, commits last
        async with late.transaction():
            await store.append(late, [(0, [on("x/t/1", new("late", 1))])])  # position 2, committed first
        assert await conn.fetch(query, 0, 0) == []  # position 2 is held back while 1 may still commit
        await open_tx.commit()
        assert [r["global_position"] for r in await conn.fetch(query, 0, 0)] == [1, 2]
    finally:
        await early.close()
        await late.close()


async def test_a_former_owner_is_fenced_out_of_its_chain(conn):
    """The new owner of a partition claims its chain; the former owner, still holding a batch
    after the rebalance, cannot append to it any more."""
    async with conn.transaction():
        former = await store.claim_chains(conn, ["guard/cdr/3"])
    async with conn.transaction():
        await store.append(conn, [(0, [on("guard/cdr/3", new("acc-1", 1))])], epochs=former)
    async with conn.transaction():
        current = await store.claim_chains(conn, ["guard/cdr/3"])
    assert current["guard/cdr/3"] == former["guard/cdr/3"] + 1
    with pytest.raises(store.FencedOut) as fenced:
        async with conn.transaction():
            await store.append(conn, [(1, [on("guard/cdr/3", new("acc-1", 2))])], epochs=former)
    assert fenced.value.chains == ("guard/cdr/3",)
    async with conn.transaction():
        await store.append(conn, [(1, [on("guard/cdr/3", new("acc-1", 2))])], epochs=current)
    assert [e.stream_version for e in await store.read_stream(conn, "acc-1")] == [1, 2]
    assert (await verify_chain(conn)).ok


async def test_service_role_cannot_update_or_delete_events(database_url, conn):
    await append(conn, 0, [new("s-1", 1)])
    service = await connect(database_url, role="wuguan_service")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service.execute("UPDATE events SET payload = '{}'::jsonb")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service.execute("DELETE FROM events")
        async with service.transaction():
            await store.append(service, [(1, [new("s-1", 2)])])  # appending is allowed
    finally:
        await service.close()


async def test_A_APPEND_ONLY_even_the_owner_is_stopped_by_the_trigger(conn):
    await append(conn, 0, [new("s-1", 1)])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("UPDATE events SET payload = '{}'::jsonb")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("DELETE FROM events")


async def _as_superuser_bypassing_triggers(conn, sql: str) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql)


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE events SET payload = jsonb_set(payload, '{n}', '99') WHERE global_position = 3",
        "UPDATE events SET business_time = business_time + interval '1 day' WHERE global_position = 2",
        "DELETE FROM events WHERE global_position = 3",
        "DELETE FROM events WHERE global_position = 5",
        "UPDATE events SET global_position = -2 WHERE global_position = 2;"
        "UPDATE events SET global_position = 2 WHERE global_position = 3;"
        "UPDATE events SET global_position = 3 WHERE global_position = -2",
        "UPDATE events SET stream_id = 's-other' WHERE global_position = 1",
        # the chains themselves: a truncated tail, a swapped order, an event moved to another chain
        "DELETE FROM events WHERE chain_seq = 2 AND chain_id = 'dunning/t/1'",
        "UPDATE events SET chain_seq = -1 WHERE global_position = 1;"
        "UPDATE events SET chain_seq = 1 WHERE global_position = 2;"
        "UPDATE events SET chain_seq = 2 WHERE global_position = 1",
        "UPDATE events SET chain_id = 'dunning/t/1', chain_seq = 3 WHERE global_position = 3",
        "UPDATE event_chains SET seq = seq - 1 WHERE chain_id = 'dunning/t/0'",
        # an event put past its chain's head, or on the log before chains, by no append; one unnumbered
        "CREATE TEMP TABLE forged AS SELECT * FROM events WHERE global_position = 5;"
        "UPDATE forged SET global_position = 99, event_id = gen_random_uuid(), stream_version = 99, chain_seq = 3;"
        "INSERT INTO events SELECT * FROM forged",
        "CREATE TEMP TABLE forged AS SELECT * FROM events WHERE global_position = 5;"
        "UPDATE forged SET global_position = 99, event_id = gen_random_uuid(), stream_version = 99,"
        " chain_id = NULL, chain_seq = NULL;"
        "INSERT INTO events SELECT * FROM forged",
        "UPDATE events SET chain_seq = NULL WHERE global_position = 2",
        # an anchor that names another event: the chain's readers would miss events
        "UPDATE chain_anchors SET position = 3 WHERE chain_id = 'dunning/t/0' AND seq = 1",
    ],
)
async def test_A_TAMPER_EVIDENT_verify_detects_changes_removals_and_reordering(conn, tamper):
    await append(conn, 0, [on("dunning/t/0", new("s-1", n)) for n in (1, 2, 3)])
    await append(conn, 0, [on("dunning/t/1", new("s-2", n)) for n in (4, 5)])
    assert (await verify_chain(conn)).ok
    await _as_superuser_bypassing_triggers(conn, tamper)
    report = await verify_chain(conn)
    assert not report.ok
    assert report.problems


async def test_A_TAMPER_EVIDENT_verify_names_the_decisions_no_append_records(conn):
    """A decision in no append is never published nor projected: `wuguan verify` counts the
    appends' decisions against the log's and names what they leave out; the runbook's repair
    (docs/operations/runbooks.md, WuguanRelayLagHigh) records them again, one transaction's
    stretches apart. Appends are append-only, as the log is (A.APPEND_ONLY)."""
    await append(conn, 0, [on("dunning/t/0", new("s-1", n)) for n in (1, 2, 3)])
    await append(conn, 0, [on("dunning/t/1", new("s-2", 4))])
    assert (await verify_chain(conn)).ok
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM event_appends WHERE decisions = 1")
    # The second decision's append gone; of the first transaction's, only its first decision left.
    await _as_superuser_bypassing_triggers(conn, "DELETE FROM event_appends WHERE decisions = 1;"
                                                 " UPDATE event_appends SET last_position = 1, decisions = 1")
    assert (await verify_chain(conn)).problems == [
        "the log holds 4 decisions and its appends record 1",
        *(f"position {p}: in no append, so never published or projected" for p in (2, 3, 4))]
    # a worker's walk of its own chains counts its own decisions, as it walks them
    assert (await verify_chain(conn, service="dunning")).problems == [
        "the log holds 4 decisions of dunning and its appends record 1",
        *(f"position {p}: in no append, so never published or projected" for p in (2, 3, 4))]
    assert (await verify_chain(conn, service="cards")).ok

    await conn.execute("INSERT INTO relay_checkpoints (relay, tx_id, global_position)"
                       " SELECT 'relay:dunning', tx_id, global_position FROM events WHERE global_position = 4")
    await conn.execute(_runbook_sql("Decisions that are stored and never published"))
    assert (await verify_chain(conn)).ok
    read = await conn.fetch(f"SELECT global_position FROM {store.committed_after('10')} ORDER BY {store.COMMIT_ORDER}",
                            0, 0)
    assert [r["global_position"] for r in read] == [1, 2, 3, 4]
    first_tx = await conn.fetchval("SELECT tx_id FROM events WHERE global_position = 1")
    assert tuple(await conn.fetchrow("SELECT tx_id, global_position FROM relay_checkpoints")) == (first_tx, 0)


@pytest.mark.parametrize("says", [None, "on"], ids=["before migration 0014", "before migration 0015"])
async def test_a_writer_that_does_not_record_its_appends_is_refused(conn, says):
    """A worker from before migration 0014 would store decisions no reader sees, and one from
    before 0015 decisions whose chain no anchor finds: refused, so it holds its batch until it is
    replaced; the store's own append says it records both."""
    await append(conn, 0, [on("dunning/t/0", new("s-1", 1))])
    legacy = await conn.fetchrow("SELECT * FROM events")
    columns = [c for c in legacy.keys() if c not in ("global_position", "event_id", "stream_version", "chain_seq")]
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="does not record its appends"):
        async with conn.transaction():
            if says is not None:  # what the release before 0015 said
                await conn.execute(f"SELECT set_config('wuguan.records_appends', '{says}', true)")
            await conn.execute(
                f"INSERT INTO events (global_position, event_id, stream_version, chain_seq, {', '.join(columns)})"
                f" SELECT 99, gen_random_uuid(), 2, 2, {', '.join(columns)} FROM events WHERE global_position = 1")
    assert await conn.fetchval("SELECT count(*) FROM events") == 1


def _runbook_sql(section: str) -> str:
    """The first SQL block after `section` in the operations runbook."""
    text = (Path(__file__).parents[2] / "docs" / "operations" / "runbooks.md").read_text()
    return text[text.index(section):].split("```sql\n", 1)[1].split("```", 1)[0]


async def test_A_TAMPER_EVIDENT_events_on_a_chain_no_append_made_are_named(conn):
    """Events moved onto chains that have no head are named by `wuguan verify`, and by the walk of
    the service a chain is named after: the walk reads every row of the log, so chains before,
    between and after the known ones all count."""
    for n, chain in enumerate(("dunning/t/0", "dunning/t/2", "dunning/t/4")):
        await append(conn, 0, [on(chain, new(f"s-{n}", m)) for m in (1, 2)])
    await append(conn, 0, [on("cards/t/0", new("c-1", 1)._replace(service="cards"))])
    for position, chain in ((2, "dunning/t/1"), (4, "dunning/t/9"), (5, "dunning/t/3"), (6, "dunning_x/t/3"),
                            (7, "cards/t/7")):
        await _as_superuser_bypassing_triggers(conn, f"UPDATE events SET chain_id = '{chain}' WHERE global_position = {position}")

    def headless(report) -> list[str]:
        return [p for p in report.problems if p.endswith("on a chain with no head")]

    assert headless(await verify_chain(conn)) == [f"chain {c}: {n} event(s) on a chain with no head" for c, n in (
        ("cards/t/7", 1), ("dunning/t/1", 1), ("dunning/t/3", 1), ("dunning/t/9", 1), ("dunning_x/t/3", 1))]
    assert [p.split(":")[0] for p in headless(await verify_chain(conn, service="dunning"))] == [
        "chain dunning/t/1", "chain dunning/t/3", "chain dunning/t/9"]
    assert [p.split(":")[0] for p in headless(await verify_chain(conn, service="cards"))] == ["chain cards/t/7"]


async def test_appends_committing_during_a_walk_are_left_for_the_next_one(database_url, conn, monkeypatch):
    """A walk reads the heads and the log's last position first, then the log: what commits after
    that is the next walk's, though its positions may come before the last one (positions are
    not taken in commit order). A known chain's later events lie past its head; a chain whose first
    append commits then is not taken for one with no head (verify._check_headless), as a worker's
    periodic walk sees while the worker appends to a partition it has just been given."""
    from services.common.eventstore import verify

    await append(conn, 0, [on("dunning/t/0", new("s-1", 1))])
    await append(conn, 0, [on("dunning/t/1", new("s-2", 1))])
    writer = await connect(database_url)
    late = writer.transaction()
    await late.start()
    await store.append(writer, [(1, [on("dunning/t/1", new("s-2", 2))]), (0, [on("dunning/t/5", new("s-5", 1))])])
    await append(conn, 1, [on("dunning/t/0", new("s-1", 2))])  # after the late ones' positions
    real_walk = verify._walk_log

    async def commit_then_walk(*args, **kwargs):
        await late.commit()
        return await real_walk(*args, **kwargs)

    monkeypatch.setattr(verify, "_walk_log", commit_then_walk)
    try:
        report = await verify_chain(conn, service="dunning")
    finally:
        await writer.close()
    assert report.ok, report.problems
    assert (report.chains_checked, report.events_checked) == (3, 3)  # the legacy chain, t/0 and t/1
    monkeypatch.undo()
    report = await verify_chain(conn, service="dunning")
    assert report.ok and (report.chains_checked, report.events_checked) == (4, 5)


async def test_a_stream_read_but_not_written_may_not_have_moved_either(conn):
    await append(conn, 0, [new("catalogue", 1)])
    await append(conn, 1, [new("catalogue", 2)])  # another writer moves the catalogue on
    with pytest.raises(store.ConcurrencyConflict):
        async with conn.transaction():
            await store.append(conn, [(0, [new("account-1", 1)])], read_versions={"catalogue": 1})
    async with conn.transaction():
        await store.append(conn, [(0, [new("account-1", 1)])], read_versions={"catalogue": 2, "never-written": 0})
    assert len(await store.read_stream(conn, "account-1")) == 1


async def test_periodic_verifier_walks_its_service_s_whole_chains_and_flags_tampering(database_url, conn):
    """A.TAMPER_EVIDENT: each worker walks its own service's chains, from their first event each
    time; `wuguan verify` walks every service's."""
    from prometheus_client import REGISTRY

    from services.common.runtime.integrity import PeriodicVerifier

    pool = await create_pool(database_url, role="wuguan_service")
    try:
        verifier = PeriodicVerifier(service="dunning", pool=pool, interval_s=60)
        await append(conn, 0, [new("s-1", 1), new("s-1", 2)])
        await append(conn, 0, [new("c-1", 1)._replace(service="cards")])  # another service's chain
        assert await verifier.verify_once()
        await append(conn, 2, [new("s-1", 3)])
        assert await verifier.verify_once()
        assert verifier.verified_through == 3  # its own three, not the cards event
        assert REGISTRY.get_sample_value("wuguan_verify_events_checked", {"service": "dunning"}) == 3
        assert (await verify_chain(conn)).events_checked == 4
        # another service's event is changed: that service's walk and `wuguan verify` find it
        await _as_superuser_bypassing_triggers(conn, "UPDATE events SET payload = '{\"n\": 8}' WHERE service = 'cards'")
        assert await verifier.verify_once()
        assert not (await verify_chain(conn)).ok
        assert not (await verify_chain(conn, service="cards")).ok
        # an event verified in an earlier walk is changed: the next walk still finds it
        await _as_superuser_bypassing_triggers(conn, "UPDATE events SET payload = '{\"n\": 9}' WHERE global_position = 1")
        assert not await verifier.verify_once()
        assert REGISTRY.get_sample_value("wuguan_verify_ok", {"service": "dunning"}) == 0
    finally:
        await pool.close()

"""Rows and index entries the store writes per CDR, measured from Postgres's statistics (issue 13).

A run of CDRs only goes through the guard's BatchProcessor (bench.in_process) on a database of
its own; pg_stat_user_tables is read before and after. Rows = n_tup_ins per table (COPY counts).
pg_stat_user_indexes does not count inserts, so index entries = rows inserted into a table x the
indexes on it (pg_index), reported per index too; a partial index holds only the rows its predicate
admits, counted in the table before and after (the tables read here are only inserted into).
Updates (chain heads, the business clock: per batch, not per CDR) are reported beside, with the
index entries their non-HOT versions add.

Statistics reach the shared counters when a backend is idle a while or exits: the writer's pool is
closed before each reading, and the reading is retried until it agrees with count(*) of the log.
"""
from __future__ import annotations

import asyncio
import time

import asyncpg

from .workload import Workload

TABLES = ("SELECT relid, CASE WHEN schemaname = 'public' THEN relname ELSE schemaname || '.' || relname END"
          " AS name, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables")
INDEXES = ("SELECT indrelid, indrelid::regclass::text AS tablename, indexrelid::regclass::text AS name,"
           " indpred IS NOT NULL AS partial, pg_get_expr(indpred, indrelid) AS predicate FROM pg_index"
           " WHERE indrelid IN (SELECT relid FROM pg_stat_user_tables)")


async def _partial_entries(conn: asyncpg.Connection, indexes: list[dict]) -> None:
    """Each partial index's entries: the rows of its table that its predicate admits."""
    for index in indexes:
        if index["partial"]:
            index["entries"] = await conn.fetchval(
                f"SELECT count(*) FROM {index['tablename']} WHERE {index['predicate']}")  # from the catalogue


def cdrs_only(accounts: list[str], count: int) -> list[list[str]]:
    """`count` CDRs for the accounts (b) used, on switches and usage ids of their own: (b)'s
    in-process store has seen the accounts but not these CDRs, and no switch sequence has a gap."""
    workload = Workload(accounts=1, tag="R", seed=17)
    workload.accounts = accounts
    return [[t, k.decode(), v.decode()] for _, (t, k, v) in (workload.cdr() for _ in range(count))]


async def _reading(conn: asyncpg.Connection) -> dict[str, dict]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return {r["name"]: {"relid": r["relid"], "ins": r["n_tup_ins"], "upd": r["n_tup_upd"],
                        "hot": r["n_tup_hot_upd"]} for r in await conn.fetch(TABLES)}


async def settled_reading(database_url: str, timeout_s: float = 15.0) -> dict:
    """The tables' counters once every closed writer's statistics have arrived: two readings
    alike, and the log's inserts equal to its rows (nothing is ever deleted from it)."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline, last, alike = time.monotonic() + timeout_s, None, 0
        while True:
            reading = await _reading(conn)
            logged = await conn.fetchval("SELECT count(*) FROM events")
            agrees = reading.get("events", {}).get("ins") == logged
            alike = alike + 1 if reading == last else 0
            # An insert rolled back (a retried batch) counts too, so the two may never agree:
            # then a reading unchanged for 2 s stands, marked unsettled.
            if (agrees and alike) or alike >= 10 or time.monotonic() > deadline:
                indexes = [dict(r) for r in await conn.fetch(INDEXES)]
                await _partial_entries(conn, indexes)
                return {"tables": reading, "settled": agrees and alike > 0, "indexes": indexes}
            last = reading
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def per_cdr(before: dict, after: dict, cdrs: int) -> dict:
    """The difference of two settled readings, per CDR, with per-table and per-index detail."""
    indexes_of: dict[int, list[dict]] = {}
    for index in after["indexes"]:
        indexes_of.setdefault(index["indrelid"], []).append(index)
    entries_before = {i["name"]: i.get("entries", 0) for i in before["indexes"]}
    tables, indexes = {}, {}
    rows = entries = updates = update_entries = 0
    for name, now in sorted(after["tables"].items()):
        was = before["tables"].get(name, {"ins": 0, "upd": 0, "hot": 0})
        ins, upd, hot = now["ins"] - was["ins"], now["upd"] - was["upd"], now["hot"] - was["hot"]
        if not (ins or upd):
            continue
        own = indexes_of.get(now["relid"], [])
        added = {i["name"]: i["entries"] - entries_before.get(i["name"], 0) if i["partial"] else ins for i in own}
        rows, entries = rows + ins, entries + sum(added.values())
        updates, update_entries = updates + upd, update_entries + (upd - hot) * len(own)
        tables[name] = {"rows_per_cdr": _per(ins, cdrs), "indexes": len(own),
                        "index_entries_per_cdr": _per(sum(added.values()), cdrs), "updates_per_cdr": _per(upd, cdrs)}
        for index in own:
            indexes[index["name"]] = {"table": name, "entries_per_cdr": _per(added[index["name"]], cdrs),
                                      **({"partial": True} if index["partial"] else {})}
    return {
        "cdrs": cdrs, "rows_per_cdr": _per(rows, cdrs), "index_entries_per_cdr": _per(entries, cdrs),
        "updated_rows_per_cdr": _per(updates, cdrs),
        "index_entries_from_updates_per_cdr": _per(update_entries, cdrs),
        "tables": tables, "indexes": indexes, "settled": before["settled"] and after["settled"],
    }


def _per(n: int, cdrs: int) -> float | None:
    return round(n / cdrs, 3) if cdrs else None


def table_rows(results: dict) -> list[tuple[str, str, str]]:
    """The bench table's rows for (b)'s rows per CDR and µs per input by phase."""
    rows = []
    r = results.get("b_rows_per_cdr") or {}
    if r.get("cdrs"):
        per_table = ", ".join(f"{t} {v['rows_per_cdr']}" for t, v in r["tables"].items() if v["rows_per_cdr"])
        rows.append(("(b) rows / index entries per CDR", f"{r['rows_per_cdr']} / {r['index_entries_per_cdr']}",
                     f"{r['cdrs']} CDRs in process; {per_table}; updates {r['updated_rows_per_cdr']}"))
    p = results.get("b_phases") or {}
    if p.get("us_per_input"):
        phases = ", ".join(f"{k} {v}" for k, v in p["us_per_input"].items())
        rows.append(("(b) in process, us per input by phase", f"{p['batch_us_per_input']} us", phases))
    return rows

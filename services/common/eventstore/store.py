"""Append-only, hash-chained event store on Postgres (asyncpg).

The log is made of chains, one per (service, input topic, partition) (migration 0005): each event
is sealed into the chain of the partition whose input caused it, and a chain's head row is locked by the
appending transaction only. Two partitions' appends therefore commit concurrently; the one lock
all appends used to share is gone. Callers batch: one COPY per batch of decisions, not per event.

Optimistic concurrency stays per stream: UNIQUE(stream_id, stream_version) refuses a second
writer of the same version, and the versions of streams read but not written are checked at
append time (see `append`).
"""
from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence

import asyncpg
import orjson

from .chain import chain_link
from .records import NewEvent, StoredEvent

COLUMNS = (
    "global_position", "stream_id", "stream_version", "event_id", "event_type",
    "schema_version", "service", "business_time", "causation_id", "correlation_id",
    "payload", "prev_hash", "hash", "chain_id", "chain_seq", "input_hash", "input_offset", "claim_key", "claim_value",
)
# A row's columns but its transaction's, which a reader of commit order takes from its append.
_ROW_COLUMNS = ", ".join((*COLUMNS, "recorded_at"))
SELECT_COLUMNS = (
    "global_position, stream_id, stream_version, event_id::text AS event_id, event_type, "
    "schema_version, service, business_time, recorded_at, causation_id, correlation_id, "
    "payload, prev_hash, hash, chain_id, chain_seq"
)


# Readers that follow the log (relays, the finance projector) go by (tx_id, global_position),
# which every reader sees in one order, and read only rows of transactions older than every
# transaction still running: a row that commits late is then never skipped, as positions are
# not handed out in commit order. That order is kept per append, not per row (migration 0014).
# The transaction below which every one has ended: readers read the transactions older than it.
CURRENT_HORIZON = "pg_snapshot_xmin(pg_current_snapshot())"
COMMIT_ORDER = "tx_id, global_position"


def committed_after(page: str, service: str | None = None) -> str:
    """A FROM item, `events`, of the log's rows after a reader's checkpoint ($1, $2: tx_id,
    global_position) in transactions older than every one still running: at least `page` rows
    (the SQL of a number) when there are that many. The reader orders it by COMMIT_ORDER and
    limits it to `page`. `service`: the SQL naming the one service to read (e.g. "$3").

    The appends are walked one index probe at a time in commit order (event_appends' primary key,
    or with a service its own index) until they hold `page` rows past the one the checkpoint is
    in, and each one's rows are read from the log by position, from the checkpoint on and at most
    `page` of them: those of the append's transaction and service, as another transaction's
    positions may fall in its range. One transaction's appends never overlap, so the first `page`
    rows in commit order are among them. The walk stops by itself: left to the planner, a page
    far behind the log's end, estimated at a row, read and sorted every row after it (6.3 s for
    1 000 rows of a 1M log), and one from its start took a hash join of the whole table."""
    own = f" AND service = {service}" if service is not None else ""
    after = ("SELECT tx_id, last_position, first_position, service, decisions FROM event_appends"
             " WHERE (tx_id, last_position) > ({}) AND tx_id < " + CURRENT_HORIZON + own +
             " ORDER BY tx_id, last_position LIMIT 1")
    return ("(WITH RECURSIVE walk AS ("
            f"SELECT *, 0::bigint AS counted FROM ({after.format('$1::xid8, $2::bigint')}) AS first"
            f" UNION ALL SELECT n.*, w.counted + n.decisions FROM walk w CROSS JOIN LATERAL"
            f" ({after.format('w.tx_id, w.last_position')}) AS n WHERE w.counted < {page})"
            " SELECT a.tx_id, e.* FROM walk a CROSS JOIN LATERAL ("
            f"SELECT {_ROW_COLUMNS} FROM events e WHERE e.global_position BETWEEN"
            " CASE WHEN a.tx_id = $1::xid8 THEN greatest(a.first_position, $2::bigint + 1) ELSE a.first_position END"
            " AND a.last_position AND e.tx_id = a.tx_id AND e.service = a.service"
            f" ORDER BY e.global_position LIMIT {page}) AS e) AS events")


# A chain's anchors (migration 0015): every 64th event of it, and the first of each append's run
# of it; the only ones indexed by chain.
ANCHOR_EVERY = 64


def chain_rows_sql(columns: str) -> str:
    """The rows (`columns`, which may not be named anchor_seq, anchor_position, next_seq or
    next_position) of chain $1 numbered after $2 and up to $3, in that order, at most $4 of them.

    Read a segment at a time: from each of the chain's anchors to the next, the chain's events
    numbered from the one up to the other, by the primary key from the one's position. Within a
    chain positions rise with sequence numbers (_PREPARE_APPEND), so a segment's events follow its
    anchor, among only what other chains appended while they were: at most 63 of them lie between
    two anchors, and an append's run of them begins at one, so the read stops at the run's end
    however long before the next run, for a chain that grows a few events a day as for a busy one.
    A segment read is bounded by the next anchor's position too, so an event missing (removed by
    hand) is not made up for by the next segment's."""
    return (
        f"SELECT {columns} FROM (SELECT seq AS anchor_seq, position AS anchor_position,"
        " lead(seq) OVER byseq AS next_seq, lead(position) OVER byseq AS next_position FROM chain_anchors"
        " WHERE chain_id = $1 AND seq <= $3 AND seq >= coalesce((SELECT max(seq) FROM chain_anchors"
        " WHERE chain_id = $1 AND seq <= $2 + 1), 1) WINDOW byseq AS (ORDER BY seq)) AS segment"
        f" CROSS JOIN LATERAL (SELECT global_position AS at, chain_seq AS numbered, {columns} FROM events"
        " WHERE chain_id = $1 AND global_position >= segment.anchor_position"
        " AND global_position < coalesce(segment.next_position, 9223372036854775807)"
        " ORDER BY global_position LIMIT coalesce(segment.next_seq, $3 + 1) - segment.anchor_seq) AS e"
        " WHERE numbered > $2 AND numbered <= $3 ORDER BY at LIMIT least($4, $3 - $2)")


async def chain_pages(conn: asyncpg.Connection, chain_id: str, after: int, upto: int, columns: str,
                      page: int = 5000) -> AsyncIterator[list[asyncpg.Record]]:
    """The chain's rows numbered after `after` and up to `upto` (chain_rows_sql), a page of
    numbers at a time, as each read sorts what it found; ends at the first page that finds none.
    A number missing shows as a jump in the rows' numbers, which the caller checks."""
    query = chain_rows_sql(columns)
    while after < upto:
        rows = await conn.fetch(query, chain_id, after, min(upto, after + page), page)
        if not rows:
            return
        yield rows
        after = min(upto, after + page)


async def chains_in_log_order(conn: asyncpg.Connection, open_chains: Callable[[], list[str]], columns: str,
                              start: int = 0, page: int = 5000) -> AsyncIterator[list[asyncpg.Record]]:
    """Pages of the log from position `start` on, in position order, of the chains that
    `open_chains()` names, asked before each page: rows of (global_position, chain_id, `columns`).
    Ends when it names none, or at the log's end. How a reader of several chains reads them: the
    log once, where each chain's runs read on their own hold what the others appended meanwhile."""
    query = (f"SELECT global_position, chain_id, {columns} FROM events WHERE global_position >= $1"
             " AND chain_id = ANY($2::text[]) ORDER BY global_position LIMIT $3")
    while chains := open_chains():
        rows = await conn.fetch(query, start, chains, page)
        if not rows:
            return
        yield rows
        start = rows[-1][0] + 1


async def first_anchor_position(conn: asyncpg.Connection, after: Mapping[str, int]) -> int:
    """The position from which every chain's events numbered after `after[chain]` lie: the lowest
    of their anchors at or before the first of them (0 when a chain has none)."""
    return await conn.fetchval(
        "SELECT coalesce(min(coalesce(a.position, 0)), 0) FROM unnest($1::text[], $2::bigint[]) AS w(chain_id, after)"
        " LEFT JOIN LATERAL (SELECT position FROM chain_anchors c WHERE c.chain_id = w.chain_id"
        " AND c.seq <= w.after + 1 ORDER BY c.seq DESC LIMIT 1) AS a ON true", list(after), list(after.values()))


def chain_anchors(placed: Iterable[tuple[int, str, int]]) -> list[list]:
    """[chain, seq, position] of each anchor among events (position, chain, seq) given in position
    order, as one append stores them: each chain's first event in it, and every 64th of a chain."""
    anchors, opened = [], set()
    for position, chain, seq in placed:
        if chain not in opened or seq % ANCHOR_EVERY == 1:
            opened.add(chain)
            anchors.append([chain, seq, position])
    return anchors


class ConcurrencyConflict(Exception):
    """Another writer appended to one of the streams first; reload and decide again."""


class FencedOut(Exception):
    """The chains' partitions have a newer owner (their epoch moved on): this writer may not append."""

    def __init__(self, chains: Sequence[str]):
        super().__init__(f"fenced out of {len(chains)} chain(s): {', '.join(chains)}")
        self.chains = tuple(chains)


def chain_name(service: str, topic: str, partition: int) -> str:
    """The chain of one input partition of a service. Per topic as well as partition, so that
    a chain's single writer is the partition's owner whatever the group assigns together. A '/'
    separates the parts (a service's walk checks the chains named `<service>/…`), so a service
    name may not hold one; a Kafka topic name cannot."""
    if "/" in service:
        raise ValueError(f"service name {service!r} holds a '/', which separates a chain name's parts")
    return f"{service}/{topic}/{partition}"


def chain_genesis(chain_id: str) -> bytes:
    """The `prev_hash` of a chain's first event: binds the chain's events to its name."""
    return hashlib.sha256(b"wuguan-chain:" + chain_id.encode()).digest()


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs every store connection needs: jsonb as Python objects via orjson.

    Binary format (a version byte, then the JSON text) so COPY can carry jsonb too.
    """
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + orjson.dumps(value),
        decoder=lambda data: orjson.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


def _stored(record: asyncpg.Record) -> StoredEvent:
    """A row of SELECT_COLUMNS, which are StoredEvent's leading fields in their order: built
    positionally, as a dict and keywords per row were a tenth of `wuguan verify`'s time."""
    return StoredEvent(*record)


def default_chain(event: NewEvent) -> str:
    return event.chain_id or f"{event.service}/-"


def seal(events: Iterable[NewEvent], positions: Iterator[int], heads: dict[str, list],
         versions: dict[str, int]) -> Iterator[StoredEvent]:
    """The events as the log stores them, in this order: the next of `positions` each, the next
    version of each stream (`versions` holds the current ones and is advanced) and the next link
    of each one's chain (`heads` maps a chain to its [seq, hash] and is advanced). The one sealing
    the store's append and the bench's bulk load both use."""
    for event in events:
        position = next(positions)
        version = versions[event.stream_id] = versions.get(event.stream_id, 0) + 1
        chain = default_chain(event)
        head = heads[chain]
        link = chain_link(head[1], position, version, event)
        # In StoredEvent's order, positionally: keywords cost more, once per decision.
        yield StoredEvent(
            position, event.stream_id, version, event.event_id, event.event_type, event.schema_version,
            event.service, event.business_time, None,  # recorded_at: set by the database
            event.causation_id, event.correlation_id, event.payload, head[1], link, chain, head[0] + 1,
            event.input_hash, event.input_offset, event.claim_key, event.claim_value,
        )
        head[0], head[1] = head[0] + 1, link


def row(e: StoredEvent) -> tuple:
    """A sealed event as the COLUMNS of `events`."""
    return (e.global_position, e.stream_id, e.stream_version, e.event_id, e.event_type, e.schema_version, e.service,
            e.business_time, e.causation_id, e.correlation_id, e.payload, e.prev_hash, e.hash, e.chain_id,
            e.chain_seq, e.input_hash, e.input_offset, e.claim_key, e.claim_value)


async def claim_chains(conn: asyncpg.Connection, chains: Sequence[str]) -> dict[str, int]:
    """Take ownership of the chains for a new owner of their partitions: bump each one's epoch.
    A former owner's appends, made with the epoch it had, are refused from now on (FencedOut)."""
    await _lock_heads(conn, sorted(chains))  # in one order, as appends take them
    rows = await conn.fetch(
        "UPDATE event_chains SET epoch = epoch + 1 WHERE chain_id = ANY($1::text[]) RETURNING chain_id, epoch",
        list(chains))
    return {r["chain_id"]: r["epoch"] for r in rows}


async def _create_chains(conn: asyncpg.Connection, chains: Sequence[str]) -> None:
    """Head rows for chains that have none yet: empty, at their genesis, epoch 0."""
    await conn.execute(
        "INSERT INTO event_chains (chain_id, seq, hash) SELECT id, 0, genesis"
        " FROM unnest($1::text[], $2::bytea[]) AS u(id, genesis) ORDER BY id ON CONFLICT DO NOTHING",
        list(chains), [chain_genesis(c) for c in chains])


# The heads of the chains ${n}, locked to the transaction's commit; sorted, so two writers that
# share chains take them in one order and cannot deadlock.
_HEADS = ("SELECT chain_id, seq, hash, epoch FROM event_chains WHERE chain_id = ANY(${n}::text[])"
          " ORDER BY chain_id FOR UPDATE")


async def _lock_heads(conn: asyncpg.Connection, chains: list[str]) -> dict[str, asyncpg.Record]:
    """The chains' heads, locked to this transaction's commit (created if new)."""
    query = _HEADS.format(n=1)
    heads = {r["chain_id"]: r for r in await conn.fetch(query, chains)}
    if len(heads) < len(chains):  # a chain's first append
        await _create_chains(conn, [c for c in chains if c not in heads])
        heads = {r["chain_id"]: r for r in await conn.fetch(query, chains)}
    return heads


# This transaction's inserts into the log record their appends and their chains' anchors: the
# database refuses any other (migrations 0014, 0015), such as a worker's from before them, whose
# decisions no reader would see, or whose chains' readers would miss.
RECORDS_APPENDS = "SELECT set_config('wuguan.records_appends', 'with anchors', true)"
# How many of the streams ($1, at versions $2) moved on since they were read.
_MOVED = ("SELECT count(*) FROM unnest($1::text[], $2::integer[]) AS r(stream_id, version) WHERE r.version <>"
          " coalesce((SELECT max(stream_version) FROM events e WHERE e.stream_id = r.stream_id), 0)")
# `n` new positions, in the order they are handed out.
_POSITIONS = "SELECT array_agg(nextval('events_position_seq')) FROM generate_series(1, {n})"
# One round trip before the COPY, as a batch is mostly round trips when it is small: the streams
# read ($1, $2) checked, the chains' heads ($3) locked, and the batch's positions ($4 of them)
# taken. Taken only once every head is locked (the count reads them all first), so a chain's
# appends take their positions one after the other and its positions rise with its sequence
# numbers, which its anchors rely on (chain_rows_sql); none when a chain has no head yet.
_PREPARE_APPEND = f"""
WITH heads AS ({_HEADS.format(n=3)})
SELECT ({_MOVED}) AS moved, ({RECORDS_APPENDS}) AS records_appends,
       ({_POSITIONS.format(n="$4")} WHERE (SELECT count(*) FROM heads) = cardinality($3::text[])) AS positions,
       (SELECT array_agg((chain_id, seq, hash, epoch)) FROM heads) AS heads
"""


def _raise_if_moved(moved: int) -> None:
    if moved:
        raise ConcurrencyConflict(f"{moved} stream(s) read for this batch moved on")


async def _prepare_append(conn: asyncpg.Connection, read_versions: dict[str, int], chains: list[str],
                          count: int) -> tuple[dict[str, tuple], list[int]]:
    """({chain: (seq, hash, epoch)} locked to this transaction, `count` new positions), or
    ConcurrencyConflict when a stream read for the batch has moved on."""
    row = await conn.fetchrow(_PREPARE_APPEND, list(read_versions), list(read_versions.values()), chains, count)
    _raise_if_moved(row["moved"])
    heads = {chain: (seq, link, epoch) for chain, seq, link, epoch in row["heads"] or ()}
    if len(heads) < len(chains):  # a chain's first append: its positions are taken once its head is locked
        await _create_chains(conn, [c for c in chains if c not in heads])
        heads = {c: (r["seq"], r["hash"], r["epoch"]) for c, r in (await _lock_heads(conn, chains)).items()}
        return heads, await conn.fetchval(_POSITIONS.format(n="$1::integer"), count)
    return heads, row["positions"]


async def append(
    conn: asyncpg.Connection,
    appends: Sequence[tuple[int, Sequence[NewEvent]]],
    read_versions: dict[str, int] | None = None,
    epochs: dict[str, int] | None = None,
) -> list[StoredEvent]:
    """Append events to streams inside the caller's transaction.

    `appends` holds (expected current version of the stream, events for that stream) per
    stream; each event goes to its `chain_id`. `read_versions` holds the versions of streams the
    decisions were based on but that get no events (a tariff catalogue, an account with nothing
    to decide): they may not have moved either. Raises ConcurrencyConflict when any stream has
    moved on since it was read. `epochs` (chain -> epoch from claim_chains) fences the writer:
    FencedOut when a chain has been claimed by a newer owner since.

    A stream read but not written is checked when the batch appends, without a lock: a write to
    it committing between that check and this commit is ordered as concurrent with the batch,
    like two inputs of different topics arriving together. Streams that are written are exact:
    their unique (stream, version) allows one writer per version.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append must run inside a transaction")
    read_versions = read_versions or {}
    count = sum(len(events) for _, events in appends)
    if not count:
        if read_versions:
            _raise_if_moved(await conn.fetchval(_MOVED, list(read_versions), list(read_versions.values())))
        return []
    chains = sorted({default_chain(e) for _, events in appends for e in events})
    heads, new_positions = await _prepare_append(conn, read_versions, chains, count)
    fenced = [c for c in chains if epochs is not None and heads[c][2] != epochs.get(c)]
    if fenced:
        raise FencedOut(fenced)
    positions = iter(sorted(new_positions))  # in order, so that the append's runs are (appended_runs)
    links = {c: [heads[c][0], bytes(heads[c][1])] for c in chains}
    stored: list[StoredEvent] = []
    for expected_version, events in appends:
        # Each (expected version, events) is checked on its own, even two for one stream.
        stored += seal(events, positions, links, {e.stream_id: expected_version for e in events[:1]})
    try:
        await conn.copy_records_to_table("events", columns=COLUMNS, records=map(row, stored))
    except asyncpg.UniqueViolationError as exc:
        # The constraint only: the error's detail quotes the conflicting values.
        raise ConcurrencyConflict(f"unique constraint {exc.constraint_name} refused the append") from exc
    runs = appended_runs((e.global_position, e.service) for e in stored)
    anchors = chain_anchors((e.global_position, e.chain_id, e.chain_seq) for e in stored)
    await conn.execute(
        _ADVANCE_HEADS + ", " + _record_anchors_cte(4) + _record_appends_sql(7), chains,
        [links[c][0] for c in chains], [links[c][1] for c in chains], *_run_columns(anchors, 3), *_run_columns(runs, 4))
    return stored


# The chains' heads moved to the append's last links ($1..$3), in the statement that records the
# append: one round trip, as the heads' update alone was.
_ADVANCE_HEADS = """
WITH heads AS (
    UPDATE event_chains c SET seq = u.seq, hash = u.hash FROM unnest($1::text[], $2::bigint[], $3::bytea[])
    AS u(chain_id, seq, hash) WHERE c.chain_id = u.chain_id
)"""


def _record_anchors_cte(n: int) -> str:
    """The append's chain anchors (migration 0015): chain ${n}, sequence number and position the next two."""
    return ("anchors AS (INSERT INTO chain_anchors (chain_id, seq, position)"
            f" SELECT * FROM unnest(${n}::text[], ${n + 1}::bigint[], ${n + 2}::bigint[]))\n")


def _record_appends_sql(n: int) -> str:
    """The append recorded for the readers that follow commit order (migration 0014): per run of
    one service's positions (${n}), its first and last positions and how many decisions (the next three)."""
    return ("INSERT INTO event_appends (service, first_position, last_position, decisions)"
            f" SELECT * FROM unnest(${n}::text[], ${n + 1}::bigint[], ${n + 2}::bigint[], ${n + 3}::integer[])")


def appended_runs(placed: Iterable[tuple[int, str]]) -> list[list]:
    """[service, first position, last position, decisions] of each run of one service's events in
    (position, service)s given in position order; an append of one service's decisions is one run.
    Runs never overlap, as committed_after needs."""
    runs: list[list] = []
    last = None
    for position, service in placed:
        if last is not None and last[0] == service:
            last[2], last[3] = position, last[3] + 1
        else:
            last = [service, position, position, 1]
            runs.append(last)
    return runs


def _run_columns(rows: list[list], width: int) -> list[list]:
    """The rows' columns, as arrays to unnest: `width` of them, empty when there are no rows."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


async def record_appends(conn: asyncpg.Connection, runs: list[list], anchors: list[list]) -> None:
    """Record rows written outside `append` (a bulk load's COPY) as appends of this transaction,
    with their chains' anchors."""
    if runs:
        await conn.execute("WITH " + _record_anchors_cte(1) + _record_appends_sql(4), *_run_columns(anchors, 3),
                           *_run_columns(runs, 4))


async def read_stream(conn: asyncpg.Connection, stream_id: str) -> list[StoredEvent]:
    rows = await conn.fetch(
        f"SELECT {SELECT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version",
        stream_id,
    )
    return [_stored(r) for r in rows]


async def read_streams(conn: asyncpg.Connection, stream_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
    rows = await conn.fetch(
        f"SELECT {SELECT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[])"
        " ORDER BY stream_id, stream_version",
        list(stream_ids),
    )
    out: dict[str, list[StoredEvent]] = {s: [] for s in stream_ids}
    for row in rows:
        out[row["stream_id"]].append(_stored(row))
    return out


async def read_all(
    conn: asyncpg.Connection, after_position: int, limit: int, service: str | None = None
) -> list[StoredEvent]:
    if service is None:
        rows = await conn.fetch(
            f"SELECT {SELECT_COLUMNS} FROM events WHERE global_position > $1"
            " ORDER BY global_position LIMIT $2",
            after_position,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {SELECT_COLUMNS} FROM events WHERE service = $3 AND global_position > $1"
            " ORDER BY global_position LIMIT $2",
            after_position,
            limit,
            service,
        )
    return [_stored(r) for r in rows]

"""Walks every hash chain of the log up to its head (A.TAMPER_EVIDENT).

The log holds one chain per (service, input topic, partition) (migration 0005), plus the single chain of the
events written before it (chain_id NULL, head in event_chain_head). The heads are read first, so
appends committed during the walk are left for the next walk instead of being mistaken for a
broken end. Within a chain, sequence numbers must run 1, 2, 3 ... with each event linked to the
one before, and rise with positions (the store takes an append's positions once it holds its
chains' heads; migration 0015 finds a chain's events by that); each chain's last event must be its head.
The log is read once, in position order, and each row goes on to its chain's walk: every row is
read once, in the table's own order, however many chains there are.

A walk also checks that the log's appends (migration 0014), which the readers following commit
order go by, record every decision it walked. A walk also checks the unique claims
(services/common/runtime/claims.py) against the decisions that made them, when given each
service's `claims_made` (a walk of one service, that service's claims only): a claim sits outside
the chains (the decision's claim columns, which its link does not cover, or a row of
unique_claim_rows), and a deleted claim would let a duplicate through.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

from .chain import GENESIS_HASH, entry_of, link_of
from .store import chain_genesis

LEGACY = "log"  # how findings name the chain of events written before chains per partition
# What a walk reads of an event: the fields its link hashes, first and in their order
# (chain.entry_of hashes the row as it comes), then its link, its place and the claim riding on it.
# A row, not a StoredEvent built of it: building one was a tenth of the walk.
WALK_COLUMNS = ("global_position, stream_id, stream_version, event_id::text, event_type, schema_version, service,"
                " business_time, causation_id, correlation_id, payload, prev_hash, hash, chain_seq, claim_key,"
                " claim_value, chain_id")
POSITION, SERVICE, PAYLOAD, PREV_HASH, HASH, CHAIN_SEQ, CLAIM_KEY, CLAIM_VALUE, CHAIN = 0, 6, 10, 11, 12, 13, 14, 15, 16
ClaimsMade = Mapping[str, Callable[[dict], list[tuple[str, str]]]]


@dataclass
class VerifyReport:
    events_checked: int = 0
    chains_checked: int = 0
    problems: list[str] = field(default_factory=list)
    claims_checked: dict[str, int] = field(default_factory=dict)  # service -> claims its decisions made

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Walk:
    """One chain's walk: where it is, and the head it must end at."""

    name: str
    head_seq: int
    head_hash: bytes
    seq: int = 0
    prev: bytes = GENESIS_HASH


# The heads, the log's last position and the decisions its appends record (of the service $2, or
# all), in one snapshot: every event a head counts was stored by then, so the log is read up to
# that position. A chain's first append creates its head with its events, so a chain is known here
# or its events are left for the next walk (_check_headless); an append records itself with its
# events, so the events walked are the ones the appends read here record (_check_appends).
_HEADS = """
SELECT (SELECT coalesce(max(global_position), 0) FROM events) AS last,
       (SELECT array_agg((chain_id, seq, hash)) FROM event_chains WHERE starts_with(chain_id, $1)) AS heads,
       (SELECT coalesce(sum(decisions), 0) FROM event_appends WHERE $2::text IS NULL OR service = $2) AS appended
"""


async def verify_chain(
    conn: asyncpg.Connection,
    *,
    page_size: int = 5000,
    max_problems: int = 20,
    claims_made: ClaimsMade | None = None,
    service: str | None = None,
) -> VerifyReport:
    """Walk every chain, or with `service` that service's chains only (store.chain_name: they
    are named after it) and the legacy chain, which no append extends any more. A walk of one
    service checks that service's claims only, and events on chains named after it that have no
    head; the walk of every chain (`wuguan verify`) checks every chain's name."""
    if service is not None and claims_made:
        claims_made = {service: claims_made[service]} if service in claims_made else None
    report = VerifyReport()
    made: Counter = Counter()
    legacy = await conn.fetchrow("SELECT global_position, hash FROM event_chain_head")
    walks: dict[str | None, _Walk] = {None: _Walk(LEGACY, legacy["global_position"], bytes(legacy["hash"])) if legacy
                                      else _Walk(LEGACY, 0, GENESIS_HASH)}
    prefix = "" if service is None else f"{service}/"
    last, heads, appended = await conn.fetchrow(_HEADS, prefix, service)
    for chain_id, seq, link in heads or ():
        walks[chain_id] = _Walk(chain_id, seq, bytes(link), prev=chain_genesis(chain_id))
    found = await _walk_log(conn, prefix, last, walks, report, page_size, max_problems, claims_made, made)
    report.chains_checked = len(walks)
    if len(report.problems) >= max_problems:
        return report  # cut short: the chains' ends and the counts were not all reached
    for walk in walks.values():
        _check_end(walk, report)
    await _check_beyond(conn, walks, found.beyond, report)
    await _check_headless(conn, found.headless, report)
    await _check_anchors(conn, prefix, report, max_problems)
    await _check_appends(conn, found.walked.total() if service is None else found.walked[service], appended, service,
                         report, max_problems)
    if claims_made:
        await _check_stray_claims(conn, claims_made, made, report)
    return report


# A page of the log in position order: the legacy chain's events and those of the chains walked.
_PAGE = (f"SELECT {WALK_COLUMNS} FROM events WHERE global_position > $1 AND global_position <= $2"
         " AND (chain_id IS NULL OR starts_with(chain_id, $4)) ORDER BY global_position LIMIT $3")


@dataclass
class _Found:
    """What a walk of the log found beside the chains' links."""

    walked: Counter = field(default_factory=Counter)  # events walked, by service
    headless: Counter = field(default_factory=Counter)  # events on chains with no head, by chain
    beyond: dict = field(default_factory=dict)  # chain -> the highest number found past its head


async def _walk_log(conn, prefix: str, last: int, walks: dict[str | None, _Walk], report: VerifyReport,
                    page_size: int, max_problems: int, claims_made: ClaimsMade | None, made: Counter) -> _Found:
    """Each row of the log up to `last` on to its chain's walk."""
    found = _Found()
    position = 0
    while len(report.problems) < max_problems and position < last:
        page = await conn.fetch(_PAGE, position, last, page_size, prefix)
        if not page:
            break
        for row in page:
            chain_id = row[CHAIN]
            walk = walks.get(chain_id)
            if walk is None:
                found.headless[chain_id] += 1
                continue
            # The legacy chain is numbered by global position, the others by their sequence number.
            seq = row[POSITION] if chain_id is None else row[CHAIN_SEQ]
            if seq is None:
                report.problems.append(f"chain {walk.name} position {row[POSITION]}: an event with no sequence number")
            elif seq > walk.head_seq:  # appended after the heads were read, if its head has moved on since
                found.beyond[chain_id] = max(seq, found.beyond.get(chain_id, seq))
            else:
                _check_link(walk, row, seq, report)
                found.walked[row[SERVICE]] += 1
        position = page[-1][POSITION]
        if claims_made:
            await _check_claims(conn, page, claims_made, made, report, max_problems)
    return found


def _check_link(walk: _Walk, row, seq: int, report: VerifyReport) -> None:
    walk.seq += 1
    report.events_checked += 1
    if seq > walk.seq:
        report.problems.append(f"chain {walk.name} seq {walk.seq}: missing (next stored is {seq})")
    elif seq < walk.seq:
        report.problems.append(f"{_where(walk, row, seq)}: out of place, after seq {walk.seq - 1}")
    walk.seq = seq
    prev_hash = row[PREV_HASH]
    if prev_hash != walk.prev:
        report.problems.append(f"{_where(walk, row, seq)}: link to previous event broken")
    link = row[HASH]
    if link_of(prev_hash, entry_of(row)) != link:
        report.problems.append(f"{_where(walk, row, seq)}: content does not match its hash")
    walk.prev = link


def _check_end(walk: _Walk, report: VerifyReport) -> None:
    if walk.seq != walk.head_seq or walk.prev != walk.head_hash:
        report.problems.append(
            f"chain {walk.name}: head is at {walk.head_seq} but the chain ends at {walk.seq}"
            " (events removed from the end, or the head was altered)")


def _where(walk: _Walk, row, seq: int) -> str:
    return f"chain {walk.name} seq {seq} (position {row[POSITION]})"


async def _check_beyond(conn, walks: dict[str | None, _Walk], beyond: dict, report: VerifyReport) -> None:
    """Events numbered past their chain's head as the walk began were appended during it, or put
    there by no append if they still are: the head is read again (the legacy chain's never moves)."""
    if not beyond:
        return
    heads = {r["chain_id"]: r["seq"] for r in await conn.fetch(
        "SELECT chain_id, seq FROM event_chains WHERE chain_id = ANY($1::text[])", [c for c in beyond if c])}
    for chain_id, highest in beyond.items():
        head = walks[chain_id].head_seq if chain_id is None else heads.get(chain_id, 0)
        if highest > head:
            report.problems.append(f"chain {walks[chain_id].name}: events up to {highest} lie past its head"
                                   f" ({head}), put there by no append")


# Anchors whose position does not hold the event they name (migration 0015): a chain's readers
# (checkpointer, witness, proofs) would miss its events. One probe of the log's key each.
_MISPLACED_ANCHORS = """
SELECT a.chain_id, a.seq, a.position FROM chain_anchors a
WHERE starts_with(a.chain_id, $1) AND NOT EXISTS (
    SELECT 1 FROM events e WHERE e.global_position = a.position AND e.chain_id = a.chain_id AND e.chain_seq = a.seq)
ORDER BY a.chain_id, a.seq LIMIT $2
"""


async def _check_anchors(conn, prefix: str, report: VerifyReport, max_problems: int) -> None:
    for r in await conn.fetch(_MISPLACED_ANCHORS, prefix, max(1, max_problems - len(report.problems))):
        report.problems.append(f"chain {r['chain_id']}: its anchor of event {r['seq']} names position {r['position']},"
                               " which does not hold it (its readers would miss events)")


async def _check_headless(conn, headless: Counter, report: VerifyReport) -> None:
    """Events on a chain that has no head were put there by no append. A chain whose head exists
    by now had its first append commit during the walk: its events are the next walk's."""
    if not headless:
        return
    known = {r["chain_id"] for r in await conn.fetch(
        "SELECT chain_id FROM event_chains WHERE chain_id = ANY($1::text[])", list(headless))}
    for chain_id in sorted(set(headless) - known):
        report.problems.append(f"chain {chain_id}: {headless[chain_id]} event(s) on a chain with no head")


# The decisions no append records (migration 0014), by position: the readers that follow commit
# order (relays, the finance projector) never see them. Each probes its transaction's appends.
_UNAPPENDED = """
SELECT e.global_position FROM events e
WHERE ($2::text IS NULL OR e.service = $2)
  AND NOT EXISTS (SELECT 1 FROM event_appends a WHERE a.tx_id = e.tx_id AND a.service = e.service
                  AND e.global_position BETWEEN a.first_position AND a.last_position)
ORDER BY e.global_position LIMIT $1
"""


async def _check_appends(conn, logged: int, appended: int, service: str | None, report: VerifyReport,
                         max_problems: int) -> None:
    """The appends record at least as many decisions (of the service walked) as the walk found,
    else the decisions they leave out are named: written by no append (by hand, say), they would
    never be published or projected. Counted by the walk, as naming them probes the appends once per
    decision (3 s on a 1M log). Fewer decisions than the appends record means rows removed, which
    is the chains' walk's to find (a cut tail it cannot: docs/tamper-evidence.md)."""
    if logged <= appended:
        return
    of = "" if service is None else f" of {service}"
    report.problems.append(f"the log holds {logged} decisions{of} and its appends record {appended}")
    for r in await conn.fetch(_UNAPPENDED, max(1, max_problems - len(report.problems)), service):
        report.problems.append(f"position {r['global_position']}: in no append, so never published or projected")


async def _check_claims(conn, page: list, claims_made: ClaimsMade, made: Counter, report: VerifyReport,
                        max_problems: int) -> None:
    """Each claim a page's decisions made is stored with that decision's value and position;
    `made` counts, per service, those found stored. A decision's first claim rides on its own row
    (runtime/claims.py), read with it; any other, or one stored before migration 0010, is looked up."""
    checked, elsewhere = report.claims_checked, []
    for row in page:
        service = row[SERVICE]
        made_by = claims_made.get(service)
        if made_by is None:
            continue
        for n, (key, value) in enumerate(made_by(row[PAYLOAD])):
            checked[service] = checked.get(service, 0) + 1
            if n or row[CLAIM_KEY] != key:
                elsewhere.append((service, key, value, row[POSITION]))
                continue
            made[service] += 1
            if row[CLAIM_VALUE] != value and len(report.problems) < max_problems:
                report.problems.append(f"position {row[POSITION]}: its unique claim was altered")
    if elsewhere:
        await _check_stored_claims(conn, elsewhere, made, report, max_problems)


async def _check_stored_claims(conn, wanted: list[tuple[str, str, str, int]], made: Counter, report: VerifyReport,
                               max_problems: int) -> None:
    """Claims (service, key, value, position) not on their decision's row, looked up where any may be."""
    # By key, as the runtime asks: both sides of the view find keys by index that way, where a
    # join with the page's keys made the planner read every claim of the log for each page.
    rows = await conn.fetch(
        "SELECT service, claim_key, value, position FROM unique_claims"
        " WHERE claim_key = ANY($1::text[]) AND service = ANY($2::text[])",
        list({m[1] for m in wanted}), list({m[0] for m in wanted}))
    stored = {(r["service"], r["claim_key"]): (r["value"], r["position"]) for r in rows}
    for service, key, value, position in wanted:
        found = stored.get((service, key))
        made[service] += found is not None
        if len(report.problems) >= max_problems:  # a wiped claims table is a few findings, not a million
            continue
        if found is None:
            report.problems.append(f"position {position}: its unique claim is missing")
        elif found != (value, position):
            report.problems.append(f"position {position}: its unique claim was altered")


async def _check_stray_claims(conn, claims_made: ClaimsMade, made: Counter, report: VerifyReport) -> None:
    """Claims stored beyond those the decisions made (and that were found stored) were made by
    no decision: forged."""
    rows = await conn.fetch("SELECT service, count(*) AS n FROM unique_claims WHERE service = ANY($1::text[])"
                            " GROUP BY service", list(claims_made))
    for r in rows:
        stray = r["n"] - made.get(r["service"], 0)
        if stray > 0:
            report.problems.append(f"{stray} unique claim(s) of {r['service']} made by no decision in the log")

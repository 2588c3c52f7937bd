"""Walks the hash chain from the first event to the head (A.TAMPER_EVIDENT)."""
from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from .chain import GENESIS_HASH, event_hash
from .store import read_all


@dataclass
class VerifyReport:
    events_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_chain(conn: asyncpg.Connection, page_size: int = 5000, max_problems: int = 20) -> VerifyReport:
    report = VerifyReport()
    expected_position, prev = 0, GENESIS_HASH
    while len(report.problems) < max_problems:
        page = await read_all(conn, expected_position, page_size)
        if not page:
            break
        for event in page:
            expected_position += 1
            report.events_checked += 1
            if event.global_position != expected_position:
                report.problems.append(
                    f"position {expected_position}: missing (next stored is {event.global_position})"
                )
                expected_position = event.global_position
            if bytes(event.prev_hash) != prev:
                report.problems.append(f"position {event.global_position}: link to previous event broken")
            recomputed = event_hash(
                bytes(event.prev_hash),
                global_position=event.global_position,
                stream_id=event.stream_id,
                stream_version=event.stream_version,
                event_id=event.event_id,
                event_type=event.event_type,
                schema_version=event.schema_version,
                service=event.service,
                business_time=event.business_time,
                causation_id=event.causation_id,
                correlation_id=event.correlation_id,
                payload=event.payload,
            )
            if recomputed != bytes(event.hash):
                report.problems.append(f"position {event.global_position}: content does not match its hash")
            prev = bytes(event.hash)
    head = await conn.fetchrow("SELECT global_position, hash FROM event_chain_head")
    head_position, head_hash = (head["global_position"], bytes(head["hash"])) if head else (0, GENESIS_HASH)
    if head_position != expected_position or head_hash != prev:
        report.problems.append(
            f"chain head is at position {head_position} but the log ends at {expected_position}"
            " (events removed from the end, or the head was altered)"
        )
    return report

"""`python -m bench.decode`: decode_event against its marshmallow-only reference, per topic.

Both decode the same generated valid events (each topic's examples with fresh event ids, ids
and times, checked valid by the reference first) in the same process; rounds alternate
between the two and the best round of each counts, so a busy shared machine blurs the ratio
less than it blurs either figure. Reported: events/s of each and the speed-up (fast / ref).

Options: --events N per topic (default 2000), --seconds S per round (0.3), --rounds R (5),
--topic T (repeatable; default every input topic).
"""
from __future__ import annotations

import argparse
import copy
import gc
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from schemas.fields import parse_rfc3339
from schemas.registry import INPUT_TOPICS
from schemas.validation import decode_event, decode_event_reference

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples"
SEED = 7
# Ids a producer makes unique per event; the rest of an example is kept as it is.
_UNIQUE_IDS = ("usageId", "originId", "billId", "billNo", "paymentId", "requestId", "ticketId", "complaintId",
               "reminderId", "workId", "tariffId", "restorationOrderId")


def events(topic: str, count: int, rng: random.Random) -> list[bytes]:
    """`count` valid events of `topic`, varied from its examples."""
    examples = [orjson.loads(p.read_bytes()) for p in sorted((EXAMPLES / topic).glob("*.json"))]
    out = []
    for index in range(count):
        event = copy.deepcopy(examples[index % len(examples)])
        event["eventId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        shift = timedelta(seconds=rng.randint(-86_400 * 30, 86_400 * 30), microseconds=rng.choice([0, 0, 123_000]))
        _vary(event, shift, rng)
        value = orjson.dumps(event)
        decode_event_reference(topic, value)  # raises if the variation broke the contract
        out.append(value)
    return out


def _vary(node: Any, shift: timedelta, rng: random.Random) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, (dict, list)):
            _vary(value, shift, rng)
        elif isinstance(value, str) and (moment := parse_rfc3339(value)) is not None:
            node[key] = (moment + shift).isoformat()
        elif key in _UNIQUE_IDS and isinstance(value, str):
            node[key] = f"{value[:40]}-{rng.getrandbits(40):x}"


def rate(decode: Callable[[str, bytes], Any], topic: str, values: list[bytes], seconds: float) -> float:
    """Events per second of `decode` over `values`, repeated for at least `seconds`."""
    gc.collect()
    done, start = 0, time.perf_counter()
    while True:
        for value in values:
            decode(topic, value)
        done += len(values)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--topic", action="append", choices=sorted(INPUT_TOPICS))
    args = parser.parse_args(argv)
    rng = random.Random(SEED)
    print(f"{'topic':24} {'reference ev/s':>15} {'fast ev/s':>12} {'speed-up':>9}")
    for topic in args.topic or list(INPUT_TOPICS):
        values = events(topic, args.events, rng)
        for value in values[:50]:  # the fast path must be the same function, not just a faster one
            if decode_event(topic, value) != decode_event_reference(topic, value):
                raise SystemExit(f"{topic}: decode_event and the reference disagree; run tests/unit/test_fast_decode.py")
        reference = fast = 0.0
        for _ in range(args.rounds):
            reference = max(reference, rate(decode_event_reference, topic, values, args.seconds))
            fast = max(fast, rate(decode_event, topic, values, args.seconds))
        print(f"{topic:24} {reference:15,.0f} {fast:12,.0f} {fast / reference:8.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

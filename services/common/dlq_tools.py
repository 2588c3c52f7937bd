"""`wuguan dlq inspect|replay`: read dead letters, and send fixed-up originals back."""
from __future__ import annotations

import base64

import orjson

from .localstack.publish import publish
from .topic_reader import read_to_end


def _dlq_name(topic: str) -> str:
    return topic if topic.endswith(".dlq") else f"{topic}.dlq"


async def _read(bootstrap: str, topic: str, limit: int) -> list[dict]:
    """The `limit` most recent dead letters, oldest first."""
    records = sorted(await read_to_end(bootstrap, topic), key=lambda r: (r.timestamp, r.partition, r.offset))
    return [orjson.loads(r.value) for r in records[-limit:]] if limit > 0 else []


def letters_by_input(letters: list[dict]) -> list[dict]:
    """One row per refused input: a topic read by two services (billing.bill.v1: the guard and
    dunning) holds one letter from each for the same input, which were listed twice (issue 16)."""
    rows: dict[tuple, dict] = {}
    for letter in letters:
        origin = (letter["originalTopic"], letter["partition"], letter["offset"])
        row = rows.setdefault(origin, {
            "input": f"{origin[0]}[{origin[1]}]@{origin[2]}", "code": letter["error"]["code"],
            "message": letter["error"]["message"], "services": []})
        consumer = letter.get("consumer")
        if consumer and consumer not in row["services"]:
            row["services"].append(consumer)
    return [{**row, "services": ", ".join(row["services"])} for row in rows.values()]


async def inspect_dlq(bootstrap: str, topic: str, limit: int, output: str = "table") -> int:
    from .cli_output import emit

    rows = letters_by_input(await _read(bootstrap, _dlq_name(topic), limit))
    emit(rows, ("input", "code", "message", "services"), output, title=f"dead letters of {topic} ({len(rows)})")
    return 0


async def replay_dlq(bootstrap: str, topic: str, limit: int, database_url: str | None = None) -> int:
    """Send dead-lettered originals back to their topic, e.g. after a policy or code fix.

    A letter cut to fit the broker (`truncated`) carries only the start of its original; the
    whole one is read from the refusing service's dead_lettered_inputs row."""
    messages, seen, missing = [], set(), 0
    for letter in await _read(bootstrap, _dlq_name(topic), limit):
        # A topic read by two services can hold one letter from each for the same input.
        origin = (letter["originalTopic"], letter["partition"], letter["offset"])
        if origin in seen:
            continue
        seen.add(origin)
        raw = await _whole_original(letter, database_url)
        if raw is None:
            missing += 1
            continue
        key = letter["key"].encode() if letter.get("key") is not None else None
        messages.append((letter["originalTopic"], key, raw))
    sent = await publish(bootstrap, messages)
    print(f"replayed {sent} dead letters")
    if missing:
        print(f"{missing} truncated letter(s) not replayed: their originals are not in the database at DATABASE_URL")
    return 1 if missing else 0


async def _whole_original(letter: dict, database_url: str | None) -> bytes | None:
    if not letter.get("truncated"):
        value = letter["value"]
        return base64.b64decode(value) if letter.get("valueEncoding") == "base64" else value.encode()
    if database_url is None:
        return None
    from .db import connection

    async with connection(database_url) as conn:
        original = await conn.fetchval(
            'SELECT original FROM dead_lettered_inputs WHERE consumer = $1 AND topic = $2 AND partition = $3'
            ' AND "offset" = $4', letter["consumer"], letter["originalTopic"], letter["partition"], letter["offset"])
    return None if original is None else bytes(original)

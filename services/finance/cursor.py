"""Opaque keyset cursors. Pure.

A cursor holds the sort key of the last row returned (sort value, primary key); the next page
is the rows strictly after it in the list's fixed order, so pages are stable while new rows
arrive. Encoded as base64url JSON: opaque to clients, and anything that does not decode to the
expected shape is refused (the values only ever reach SQL as bind parameters).
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson


class CursorError(ValueError):
    pass


def encode(sort_value, key: str) -> str:
    if isinstance(sort_value, datetime):
        value = {"t": sort_value.isoformat()}
    else:
        value = {"s": None if sort_value is None else str(sort_value)}
    return base64.urlsafe_b64encode(orjson.dumps([value, key])).rstrip(b"=").decode()


def decode(cursor: str) -> tuple[object, str]:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, key = raw
        if not isinstance(key, str) or not isinstance(value, dict) or len(value) != 1:
            raise CursorError("bad cursor")
        if "t" in value:
            moment = datetime.fromisoformat(value["t"])
            if moment.tzinfo is None:
                raise CursorError("bad cursor")
            return moment, key
        if "s" in value and (value["s"] is None or isinstance(value["s"], str)):
            return value["s"], key
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise CursorError("bad cursor") from None
    raise CursorError("bad cursor")

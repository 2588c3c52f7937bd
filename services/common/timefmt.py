"""RFC 3339 times: always with an offset, never naive."""
from __future__ import annotations

from datetime import datetime


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: business times must carry an offset")
    return moment.isoformat()


def parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {text!r}")
    return moment

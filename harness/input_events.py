"""The input-event shape the pure test harnesses feed to deciders (what decode_event yields)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    event_time: datetime
    payload: dict
    correlation_id: str | None = None
    raw: dict = field(default_factory=dict)

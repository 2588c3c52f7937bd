"""Money for humans: integer fen to a yuan string, by integer arithmetic only (no floats)."""
from __future__ import annotations


def yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"

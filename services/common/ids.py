"""Deterministic identifiers: replaying the same input yields the same ids (A.REPLAY)."""
import uuid

# Fixed namespace so ids are stable across processes, machines and releases.
WUGUAN_NAMESPACE = uuid.UUID("5b0d3c1e-7a52-4f0e-9a49-8f1b6f0e2c11")


def derived_id(*parts: object) -> str:
    """A UUID that depends only on the parts, e.g. (input event id, rule, ordinal)."""
    return str(uuid.uuid5(WUGUAN_NAMESPACE, "|".join(str(p) for p in parts)))

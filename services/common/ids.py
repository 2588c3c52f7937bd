"""Deterministic identifiers: replaying the same input yields the same ids (A.REPLAY)."""
import hashlib
import uuid

# Fixed namespace so ids are stable across processes, machines and releases.
WUGUAN_NAMESPACE = uuid.UUID("5b0d3c1e-7a52-4f0e-9a49-8f1b6f0e2c11")
_NAMESPACE_BYTES = WUGUAN_NAMESPACE.bytes


def derived_id(*parts: object) -> str:
    """A UUID that depends only on the parts, e.g. (input event id, rule, ordinal).

    Exactly uuid.uuid5(WUGUAN_NAMESPACE, "|".join(parts)) (RFC 4122 version 5), computed without
    building UUID objects: two ids per CDR made uuid5's object overhead a visible share of a worker.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "|".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

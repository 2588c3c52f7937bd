"""Deterministic identifiers: replaying the same input yields the same ids (A.REPLAY)."""
import hashlib
import uuid

# Fixed namespace so ids are stable across processes, machines and releases.
WUGUAN_NAMESPACE = uuid.UUID("5b0d3c1e-7a52-4f0e-9a49-8f1b6f0e2c11")
_NAMESPACE_BYTES = WUGUAN_NAMESPACE.bytes
# The RFC 4122 variant sets the top two bits of byte 8 to 10, so its first hex digit
# 0-3 / 4-7 / 8-b / c-f becomes 8 / 9 / a / b.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def derived_id(*parts: object) -> str:
    """A UUID that depends only on the parts, e.g. (input event id, rule, ordinal).

    Exactly uuid.uuid5(WUGUAN_NAMESPACE, "|".join(parts)) (RFC 4122 version 5), computed without
    building UUID objects: two ids per CDR made uuid5's object overhead a visible share of a worker.
    The version and variant are written into the hex text rather than into the digest's bytes,
    which spares a bytearray and a second pass.
    """
    h = hashlib.sha1(_NAMESPACE_BYTES + "|".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"

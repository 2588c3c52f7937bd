"""A.PRIVACY for API output: phone numbers are masked in every response (JSON and CSV).

Decisions carry raw numbers in a few places (rated CDRs, CP1 MSISDN changes); the audit trail
returns decisions as stored, so every string on the way out passes through here. Masking keeps
the first 3 and last 4 digits, as billing_guard's evidence packs do.
"""
from __future__ import annotations

import re

PHONE_KEYS = frozenset({"callingNumber", "calledNumber", "msisdn", "phoneNumber", "contactNumber", "number"})
# Under a phone key: any number of 7-15 digits. Anywhere else: a mainland mobile number
# (optionally +86-prefixed) standing on its own, so ids (uuids, "B-2026...") are never touched.
_WHOLE = re.compile(r"^\+?\d{7,15}$")
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z*\-])(?:\+?86)?1[3-9]\d{9}(?![0-9A-Za-z\-])")


def mask_number(number: str) -> str:
    digits = number.lstrip("+")
    prefix = "+" if number.startswith("+") else ""
    if len(digits) <= 7:
        return prefix + "*" * len(digits)
    return prefix + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_text(text: str) -> str:
    return _MOBILE_IN_TEXT.sub(lambda m: mask_number(m.group(0)), text)


def masked(value, key: str | None = None):
    """A deep copy of a JSON-like value with every phone number masked."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    if isinstance(value, str):
        if key in PHONE_KEYS and any(c.isdigit() for c in value):
            return mask_number(value) if _WHOLE.match(value) else mask_text(value)
        return mask_text(value)
    return value

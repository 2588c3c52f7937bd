"""The SPEC.md section 4 rule ids the cards decisions cite."""
from __future__ import annotations

from typing import Final

STATES: Final = "C.STATES"
REPLACE_NOW: Final = "C.REPLACE_NOW"
ONCE: Final = "C.ONCE"
VOID_IS_FINAL: Final = "C.VOID_IS_FINAL"
NOT_ELIGIBLE: Final = "C.NOT_ELIGIBLE"
STOCK: Final = "C.STOCK"
DISPOSAL: Final = "C.DISPOSAL"

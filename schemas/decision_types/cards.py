"""Every decision type cards appends (cards.decisions.v1), named once (SPEC.md section 4), by
the stream it is appended to.

Finance's projection rules and self-check read cards' decisions by these names;
schemas/decision_payloads/cards.py holds their payload schemas.
"""
from __future__ import annotations

from typing import Final

# A card's stream (C.STATES, C.VOID_IS_FINAL, C.REPLACE_NOW, C.ONCE, C.NOT_ELIGIBLE)
CARD_ISSUED: Final = "cards.CardIssued"
CARD_ACTIVATED: Final = "cards.CardActivated"
REPLACEMENT_CARD_ACTIVATED: Final = "cards.ReplacementCardActivated"
ACTIVATION_IGNORED: Final = "cards.ActivationIgnored"
ACTIVATION_REFUSED: Final = "cards.ActivationRefused"
USAGE_RECORDED: Final = "cards.UsageRecorded"
USAGE_REFUSED: Final = "cards.UsageRefused"
TOP_UP_RECORDED: Final = "cards.TopUpRecorded"
TOP_UP_REFUSED: Final = "cards.TopUpRefused"
CARD_BLOCKED: Final = "cards.CardBlocked"
CARD_EXPIRED: Final = "cards.CardExpired"
INVENTORY_EVENT_IGNORED: Final = "cards.InventoryEventIgnored"
VOID_CARD_USE_REFUSED: Final = "cards.VoidCardUseRefused"
CARD_REPLACED: Final = "cards.CardReplaced"
REPLACEMENT_RETURNED: Final = "cards.ReplacementReturned"
COMPLAINT_REFERRED: Final = "cards.ComplaintReferred"
COMPLAINT_ESCALATED: Final = "cards.ComplaintEscalated"

# An outlet's stream (C.STOCK, C.REPLACE_NOW)
STOCK_RECEIVED: Final = "cards.StockReceived"
STOCK_SOLD: Final = "cards.StockSold"
STOCK_WRITTEN_OFF: Final = "cards.StockWrittenOff"
REPLACEMENT_DRAWN: Final = "cards.ReplacementDrawn"
REPLACEMENT_HANDED_OVER: Final = "cards.ReplacementHandedOver"
REPLACEMENT_REDRAWN: Final = "cards.ReplacementRedrawn"
REPLACEMENT_ESCALATED: Final = "cards.ReplacementEscalated"
STOCK_ALERT: Final = "cards.StockAlert"

CARD_STREAM_TYPES: Final = frozenset({
    CARD_ISSUED, CARD_ACTIVATED, REPLACEMENT_CARD_ACTIVATED, ACTIVATION_IGNORED, ACTIVATION_REFUSED,
    USAGE_RECORDED, USAGE_REFUSED, TOP_UP_RECORDED, TOP_UP_REFUSED, CARD_BLOCKED, CARD_EXPIRED,
    INVENTORY_EVENT_IGNORED, VOID_CARD_USE_REFUSED, CARD_REPLACED, REPLACEMENT_RETURNED,
    COMPLAINT_REFERRED, COMPLAINT_ESCALATED,
})
OUTLET_STREAM_TYPES: Final = frozenset({
    STOCK_RECEIVED, STOCK_SOLD, STOCK_WRITTEN_OFF, REPLACEMENT_DRAWN, REPLACEMENT_HANDED_OVER,
    REPLACEMENT_REDRAWN, REPLACEMENT_ESCALATED, STOCK_ALERT,
})
ALL: Final = CARD_STREAM_TYPES | OUTLET_STREAM_TYPES

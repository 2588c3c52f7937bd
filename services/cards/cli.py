"""cards' `wuguan` command (cards stock | disposal) and its declaration to the house.

services/composition.py registers DECLARATION; the kernel learns the service from it alone.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from services.common.cli_output import add_format_options
from services.common.config import Settings
from services.common.service_registry import Command, ServiceDeclaration

if TYPE_CHECKING:
    from services.common.runtime.worker import ServiceDefinition

NAME = "cards"
WEB_PORT = 8103
DISPOSAL_COLUMNS = ("outletId", "cardSerial", "batchId", "complaintId", "voidedAt", "faceValueMinor",
                    "transferredMinor", "replacedByCardSerial")


def add_commands(sub) -> dict[str, Command]:
    cards = sub.add_parser("cards", help="cards on hand per outlet, or the voided cards to destroy")
    cards.add_argument("action", choices=("stock", "disposal"))
    cards.add_argument("--outlet", help="one outlet only")
    add_format_options(cards)
    return {"cards": Command(lambda args: asyncio.run(cards_report(args)))}


async def cards_report(args) -> int:
    """C.STOCK / C.DISPOSAL: cards on hand per outlet and face value, or voided cards to destroy."""
    from services.common.cli_output import emit
    from services.common.db import connection

    from .domain.projections import disposal_list, outlet_stock

    async with connection(Settings.from_env().database_url) as conn:
        rows = await conn.fetch("SELECT payload FROM events WHERE service = 'cards' ORDER BY global_position")
    decisions = [r["payload"] for r in rows]
    wanted = (lambda outlet: not args.outlet or outlet == args.outlet)
    if args.action == "stock":
        stock = [{"outletId": outlet, "faceValueMinor": face, "cardsOnHand": count}
                 for outlet, faces in outlet_stock(decisions).items() if wanted(outlet)
                 for face, count in sorted(faces.items())]
        emit(stock, ("outletId", "faceValueMinor", "cardsOnHand"), args.output, title="cards on hand (C.STOCK)",
             right=("faceValueMinor", "cardsOnHand"))
        return 0
    # Money as integer fen columns, not the {"amountMinor", "currency"} objects of the decisions.
    disposal = [{**{k: v for k, v in card.items() if k not in ("faceValue", "transferredValue")},
                 "faceValueMinor": (card.get("faceValue") or {}).get("amountMinor"),
                 "transferredMinor": (card.get("transferredValue") or {}).get("amountMinor")}
                for outlet, cards in disposal_list(decisions).items() if wanted(outlet) for card in cards]
    emit(disposal, DISPOSAL_COLUMNS, args.output, title="voided cards to destroy (C.DISPOSAL)",
         right=("faceValueMinor", "transferredMinor"))
    return 0


def _definition() -> ServiceDefinition:
    from .worker import DEFINITION  # imported on use: the worker pulls in faust

    return DEFINITION


DECLARATION = ServiceDeclaration(name=NAME, web_port=WEB_PORT, definition=_definition, add_commands=add_commands)

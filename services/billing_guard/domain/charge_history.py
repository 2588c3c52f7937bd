"""An account's charges, read only when a dispute asks for them (D.EVIDENCE, D.AUTO_CREDIT).

The account state a worker keeps cached for every active account holds aggregates (cycle
totals, dedup keys); keeping each charge's body there made a worker's memory grow by ~2 KiB per
CDR. A dispute names the account's charges view instead (services/common/stream_views), which
the runtime folds from the account's stream when the dispute is decided.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from schemas.decision_types.guard import CDR_RATED

VIEW = "charges"


@dataclass(frozen=True)
class ChargeHistory:
    # Newest first, as (charge, earlier cells): appending is O(1) and never copies, so folding an
    # account with many charges stays linear.
    cells: tuple = ()

    @cached_property
    def by_usage(self) -> dict:
        """usage id -> charge summary (the CdrRated payload with its decisionId)."""
        charges, cell = [], self.cells
        while cell:
            charge, cell = cell
            charges.append(charge)
        return {c["usageId"]: c for c in reversed(charges)}


def evolve_charges(history: ChargeHistory, decision: dict) -> ChargeHistory:
    if decision["decisionType"] != CDR_RATED:
        return history
    return ChargeHistory(({**decision["payload"], "decisionId": decision["decisionId"]}, history.cells))

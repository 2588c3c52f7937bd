"""billing_guard's evolve: which fold applies a stored decision to the state of its stream.

Each kind of stream has its own state type (decider.py names the streams); an account's state is
folded by the rule family that made the decision. A decision no fold names leaves the state as
it is (rejections, alerts and credits the account keeps no trace of).
"""
from __future__ import annotations

from schemas.decision_types.guard import CUSTOMER_DATA_CHANGED

from . import suspension, vip_approval
from .account import BILLING_FOLDS, AccountState
from .charge_history import ChargeHistory, evolve_charges
from .customer_data import evolve_customer
from .disputes import DISPUTE_TYPES, evolve_dispute
from .planned_works import WorksState, evolve_works
from .sequences import SwitchState, evolve_switch
from .tariff_changes import evolve_catalogue
from .tariffs import Catalogue


def _suspension(state: AccountState, decision: dict) -> AccountState:
    # A suspension answer also settles the VIP approval it answered (CP4.IMPORTANT).
    return vip_approval.evolve_approval(suspension.evolve_suspension(state, decision), decision)


ACCOUNT_FOLDS = {
    **BILLING_FOLDS,  # CP3, and the bills CP4 reads
    CUSTOMER_DATA_CHANGED: evolve_customer,  # CP1
    **dict.fromkeys(suspension.TYPES, _suspension),  # CP4
    **dict.fromkeys(vip_approval.TYPES, vip_approval.evolve_approval),  # CP4.IMPORTANT
    **dict.fromkeys(DISPUTE_TYPES, evolve_dispute),  # D.*
}


def evolve_account(state: AccountState, decision: dict) -> AccountState:
    fold = ACCOUNT_FOLDS.get(decision["decisionType"])
    return fold(state, decision) if fold is not None else state


FOLDS_BY_STATE = {
    AccountState: evolve_account,
    Catalogue: evolve_catalogue,
    SwitchState: evolve_switch,
    WorksState: evolve_works,
    ChargeHistory: evolve_charges,
}


def evolve(state, decision: dict):
    """The state of a stream (or view) after one of its stored decisions."""
    return FOLDS_BY_STATE[type(state)](state, decision)

"""Accepting or rejecting a published tariff version (CP2.PUBLISHED, CP2.INCREASE_NEEDS_APPROVAL).

An increase is decided on prices, not on intentions: the new version is rated against every
item of the reference basket and compared with the version it replaces. Any item charged
more, or a smaller free allowance, makes it an increase (seed art. 5: no raising "in disguise"
through coarser increments, higher connect fees or removed caps).
"""
from __future__ import annotations

from services.common.decider import Decision

from schemas.decision_types.guard import TARIFF_VERSION_ACCEPTED, TARIFF_VERSION_REJECTED
from .policy import BasketItem, GuardPolicy
from .rating import rate_usage
from .tariffs import Catalogue, TariffVersion, from_json, tariff_json



def _basket_charge(version: TariffVersion, item: BasketItem) -> int | None:
    rate = version.rates.get((item.usage_type, item.destination_class))
    if rate is None:
        return None
    minute = item.local_time.hour * 60 + item.local_time.minute
    return rate_usage(rate, item.usage_type, item.duration_seconds, item.volume_bytes, minute).amount


def increase_findings(old: TariffVersion, new: TariffVersion, basket) -> tuple[list[dict], list[str]]:
    """Basket items the new version charges more for, and the reason codes that explain why."""
    items, reasons = [], set()
    for index, item in enumerate(basket):
        before, after = _basket_charge(old, item), _basket_charge(new, item)
        if before is None:
            continue  # the old version did not price this usage: nothing to compare against
        if after is None or after > before:
            items.append({"basketIndex": index, "usageType": item.usage_type,
                          "destinationClass": item.destination_class, "durationSeconds": item.duration_seconds,
                          "oldChargeMinor": before, "newChargeMinor": after})
            if after is None:
                reasons.add("RATE_WITHDRAWN")
    if new.free_allowance_seconds < old.free_allowance_seconds:
        reasons.add("FREE_ALLOWANCE_REDUCED")
    # Explanations per component; they name how an increase happened, the basket decides whether.
    for key, o in old.rates.items():
        n = new.rates.get(key)
        if n is None:
            continue
        if n.rate > o.rate or any(nb.rate > o.rate for nb in n.bands):
            reasons.add("RATE_RAISED")
        if n.increment_seconds > o.increment_seconds:
            reasons.add("INCREMENT_COARSER")
        if n.connect_fee > o.connect_fee:
            reasons.add("CONNECT_FEE_RAISED")
        if o.cap is not None and (n.cap is None or n.cap > o.cap):
            reasons.add("CAP_REMOVED_OR_RAISED")
        if n.bands != o.bands:
            reasons.add("TIME_BANDS_CHANGED")
    if items:
        reasons.add("BASKET_CHARGED_MORE")
    return items, sorted(reasons)


def is_increase(old: TariffVersion, new: TariffVersion, basket) -> bool:
    items, _ = increase_findings(old, new, basket)
    return bool(items) or new.free_allowance_seconds < old.free_allowance_seconds


def decide_tariff(catalogue: Catalogue, event, policy: GuardPolicy, stream_id: str) -> list[Decision]:
    p = event.payload
    doc = tariff_json(p)
    new = from_json(doc)
    now = event.event_time
    reasons: list[str] = []
    rule_ids = ["CP2.PUBLISHED"]
    if new.published_at > new.effective_from:
        reasons.append("EFFECTIVE_BEFORE_PUBLISHED")
    if new.effective_from < now:
        reasons.append("RETROACTIVE")
    keys = [(r["usageType"], r["destinationClass"]) for r in doc["rates"]]
    if len(set(keys)) != len(keys):
        reasons.append("DUPLICATE_RATE_ENTRY")
    latest = catalogue.latest(new.tariff_id)
    if catalogue.get(new.tariff_id, new.version) is not None:
        reasons.append("VERSION_EXISTS")
    elif latest is not None and new.version < latest.version:
        reasons.append("VERSION_NOT_NEWER")
    replaced = None
    if p.get("replacesVersion") is not None:
        replaced = catalogue.get(new.tariff_id, p["replacesVersion"])
        if replaced is None:
            reasons.append("REPLACED_VERSION_UNKNOWN")
    else:
        replaced = latest if latest is not None and latest.version != new.version else None
    increase_items, increase_reasons, increase = [], [], False
    if replaced is not None:
        rule_ids.append("CP2.INCREASE_NEEDS_APPROVAL")
        increase_items, increase_reasons = increase_findings(replaced, new, policy.reference_basket)
        increase = bool(increase_items) or "FREE_ALLOWANCE_REDUCED" in increase_reasons
        if increase:
            if not p.get("approvalRef"):
                reasons.append("INCREASE_WITHOUT_APPROVAL_REF")
            if not p.get("filingRef"):
                reasons.append("INCREASE_WITHOUT_FILING_REF")
    body = {
        "tariffId": new.tariff_id,
        "version": new.version,
        "name": p["name"],
        "replacesVersion": replaced.version if replaced else None,
        "increase": increase,
        "increaseFindings": increase_reasons,
        "basketItemsChargedMore": increase_items,
        "approvalRef": p.get("approvalRef"),
        "filingRef": p.get("filingRef"),
    }
    if reasons:
        return [Decision(TARIFF_VERSION_REJECTED, tuple(rule_ids), "rejected", body,
                         tuple(reasons + (increase_reasons if increase else [])),
                         stream_id=stream_id)]
    accepted_reasons = ("INCREASE_APPROVED_AND_FILED", *increase_reasons) if increase else ()
    return [Decision(TARIFF_VERSION_ACCEPTED, tuple(rule_ids), "accepted", {**body, "tariff": doc}, accepted_reasons,
                     stream_id=stream_id)]


def evolve_catalogue(catalogue: Catalogue, decision: dict) -> Catalogue:
    if decision["decisionType"] == TARIFF_VERSION_ACCEPTED:
        return catalogue.with_version(from_json(decision["payload"]["tariff"]))
    return catalogue

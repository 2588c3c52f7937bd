"""CP2: tariff versions, effective-dated rating, increase detection (pure)."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.billing_guard.domain.rating import rate_usage
from services.billing_guard.domain.tariff_changes import increase_findings, is_increase
from services.billing_guard.domain.tariffs import Band, Rate, TariffVersion, from_json, tariff_json

from harness.guard import T0, Guard, cdr, of_type, policy, rate, standard_rates, tariff

BASKET = policy().rules.reference_basket


def accepted(guard: Guard, event):
    out = guard.feed(event)
    assert out[0]["decisionType"] == "guard.TariffVersionAccepted", out[0]["reasonCodes"]
    return out[0]


def test_CP2_PUBLISHED_effective_before_publication_is_rejected():
    g = Guard()
    out = g.feed(tariff(1, T0, published=T0 + timedelta(hours=1), at=T0 - timedelta(days=1)))
    assert out[0]["decisionType"] == "guard.TariffVersionRejected"
    assert out[0]["reasonCodes"] == ["EFFECTIVE_BEFORE_PUBLISHED"]
    assert "CP2.PUBLISHED" in out[0]["ruleIds"]


def test_CP2_PUBLISHED_retroactive_version_is_rejected():
    g = Guard()
    out = g.feed(tariff(1, T0, published=T0 - timedelta(days=2), at=T0 + timedelta(hours=1)))
    assert out[0]["outcome"] == "rejected" and out[0]["reasonCodes"] == ["RETROACTIVE"]


def test_CP2_INCREASE_NEEDS_APPROVAL_higher_rate_without_refs_is_rejected_with_both_reasons():
    g = Guard()
    accepted(g, tariff(1, T0))
    out = g.feed(tariff(2, T0 + timedelta(days=30), rates=standard_rates(per_min=12)))
    assert out[0]["decisionType"] == "guard.TariffVersionRejected"
    assert {"INCREASE_WITHOUT_APPROVAL_REF", "INCREASE_WITHOUT_FILING_REF", "RATE_RAISED"} <= set(out[0]["reasonCodes"])
    assert out[0]["payload"]["basketItemsChargedMore"]


def test_CP2_INCREASE_NEEDS_APPROVAL_increase_with_refs_is_accepted_and_marked():
    g = Guard()
    accepted(g, tariff(1, T0))
    d = accepted(g, tariff(2, T0 + timedelta(days=30), rates=standard_rates(inc=60, connect=5),
                           approval="APP-1", filing="BA-2026-7"))
    assert d["payload"]["increase"] is True
    assert "CONNECT_FEE_RAISED" in d["reasonCodes"]


def test_CP2_INCREASE_NEEDS_APPROVAL_disguised_increases_are_caught():
    g = Guard()
    accepted(g, tariff(1, T0, rates=standard_rates(per_min=10, inc=6, cap=500), free=600))
    cases = {
        "INCREMENT_COARSER": standard_rates(per_min=10, inc=60, cap=500),
        "CAP_REMOVED_OR_RAISED": standard_rates(per_min=10, inc=6, cap=None),
    }
    for n, (reason, rates) in enumerate(cases.items(), start=2):
        out = g.feed(tariff(n, T0 + timedelta(days=30), rates=rates, free=600))
        assert out[0]["outcome"] == "rejected" and reason in out[0]["reasonCodes"], reason
    out = g.feed(tariff(9, T0 + timedelta(days=30), rates=standard_rates(per_min=10, inc=6, cap=500), free=300))
    assert out[0]["outcome"] == "rejected" and "FREE_ALLOWANCE_REDUCED" in out[0]["reasonCodes"]


def test_CP2_INCREASE_NEEDS_APPROVAL_a_decrease_needs_no_refs():
    g = Guard()
    accepted(g, tariff(1, T0))
    d = accepted(g, tariff(2, T0 + timedelta(days=30), rates=standard_rates(per_min=8)))
    assert d["payload"]["increase"] is False and d["reasonCodes"] == []


def test_CP2_EFFECTIVE_DATING_cdr_rated_at_version_in_force_at_start_not_at_processing():
    g = Guard()
    accepted(g, tariff(1, T0, rates=standard_rates(per_min=10)))
    accepted(g, tariff(2, T0 + timedelta(days=10), rates=standard_rates(per_min=8)))
    # Started under v1, processed after v2 took effect: v1 applies.
    before = g.feed(cdr(start=T0 + timedelta(days=9, hours=23), seconds=120, received=T0 + timedelta(days=11)))
    after = g.feed(cdr(start=T0 + timedelta(days=10, minutes=1), seconds=120))
    assert (before[0]["payload"]["tariffVersion"], before[0]["payload"]["amountMinor"]) == (1, 20)
    assert (after[0]["payload"]["tariffVersion"], after[0]["payload"]["amountMinor"]) == (2, 16)


def test_CP2_TRACEABLE_every_charge_names_tariff_and_version_and_rounding():
    g = Guard()
    accepted(g, tariff(1, T0, rates=[rate(per_min=10, inc=6)] + standard_rates()[1:]))
    out = g.feed(cdr(seconds=61))
    body = out[0]["payload"]
    assert out[0]["ruleIds"][:2] == ["CP2.EFFECTIVE_DATING", "CP2.TRACEABLE"]
    assert (body["tariffId"], body["tariffVersion"], body["billedSeconds"]) == ("T-STD", 1, 66)
    assert body["amountMinor"] == 11  # ceil(66 s x 10 fen / 60)
    assert "increment" in body["rounding"]


def test_CP2_EFFECTIVE_DATING_no_version_in_force_holds_the_cdr_for_review():
    g = Guard()
    accepted(g, tariff(1, T0 + timedelta(days=5)))
    out = g.feed(cdr(start=T0 + timedelta(days=1)))
    assert out[0]["decisionType"] == "guard.CdrUnrated"
    assert out[0]["reasonCodes"] == ["NO_TARIFF_VERSION_IN_FORCE"]


def test_CP2_rating_time_band_cap_connect_fee_and_free_allowance():
    peak = Rate(rate=20, increment_seconds=60, connect_fee=5, cap=100, bands=(Band(22 * 60, 7 * 60, 6),))
    assert rate_usage(peak, "voice", 61, 0, minute=10 * 60).amount == 45  # 2 min x 20 + 5
    assert rate_usage(peak, "voice", 61, 0, minute=23 * 60).amount == 17  # night band wraps midnight
    assert rate_usage(peak, "voice", 3600, 0, minute=10 * 60).amount == 100  # capped
    assert rate_usage(peak, "voice", 61, 0, minute=10 * 60, free_seconds_left=60).amount == 25


def test_CP2_tariff_round_trips_through_its_stored_form():
    e = tariff(1, T0, rates=[rate(bands=[("22:00", "07:00", 3)])], free=60)
    v = from_json(tariff_json(e.payload))
    assert v.rates[("voice", "local")].bands == (Band(1320, 420, 3),) and v.free_allowance_seconds == 60


rates_st = st.builds(
    Rate, rate=st.integers(0, 500), increment_seconds=st.sampled_from([1, 6, 30, 60]),
    connect_fee=st.integers(0, 50), cap=st.one_of(st.none(), st.integers(0, 5000)),
    bands=st.lists(st.builds(Band, st.integers(0, 1439), st.integers(1, 1440), st.integers(0, 500)), max_size=2).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(rates_st, st.sampled_from(["voice", "sms", "data"]), st.integers(0, 86_400), st.integers(0, 86_400),
       st.integers(0, 1439), st.integers(0, 3600))
def test_CP2_property_rating_is_monotonic_in_duration(r, usage, d1, d2, minute, free):
    short, long_ = sorted((d1, d2))
    a = rate_usage(r, usage, short, short * 1000, minute, free).amount
    b = rate_usage(r, usage, long_, long_ * 1000, minute, free).amount
    assert 0 <= a <= b


def _version(n, rates, free):
    return TariffVersion("T", n, T0, T0, free, {k: rates[i] for i, k in enumerate(KEYS)})


KEYS = sorted({(i.usage_type, i.destination_class) for i in BASKET})


@settings(max_examples=300, deadline=None)
@given(st.lists(rates_st, min_size=len(KEYS), max_size=len(KEYS)), st.lists(rates_st, min_size=len(KEYS), max_size=len(KEYS)),
       st.integers(0, 600), st.integers(0, 600))
def test_CP2_property_increase_detection_flags_exactly_versions_charging_more_for_a_basket_item(r1, r2, f1, f2):
    old, new = _version(1, r1, f1), _version(2, r2, f2)

    def charge(v, item):
        return rate_usage(v.rates[(item.usage_type, item.destination_class)], item.usage_type, item.duration_seconds,
                          item.volume_bytes, item.local_time.hour * 60 + item.local_time.minute).amount

    expected = any(charge(new, i) > charge(old, i) for i in BASKET) or f2 < f1
    assert is_increase(old, new, BASKET) == expected
    items, _ = increase_findings(old, new, BASKET)
    assert {x["basketIndex"] for x in items} == {n for n, i in enumerate(BASKET) if charge(new, i) > charge(old, i)}

"""The fast time parsing and formatting on the hot path give exactly what the plain stdlib
calls they replaced gave: decoded times, stored decisions and chain hashes depend on it.

- schemas.fields.parse_rfc3339 (fullmatch, then fromisoformat) against the group-by-group
  conversion it replaced, on every form the contract's pattern admits;
- services.common.timefmt.rfc3339 (orjson for whole-minute fixed offsets) against isoformat();
- the chain's UTC text (orjson, a zero microsecond put back) against
  astimezone(utc).isoformat(timespec="microseconds").
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.fields import _RFC3339, parse_rfc3339
from services.common.eventstore.chain import _utc
from services.common.timefmt import rfc3339


def reference_parse(value: str) -> datetime | None:
    """parse_rfc3339 as it was written before fromisoformat: the pattern's groups, one by one."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction[1:] + "00000")[:6]) if fraction else 0
    if offset in ("Z", "z"):
        zone = timezone.utc
    else:
        sign = -1 if offset[0] == "-" else 1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        zone = timezone.utc if not delta else timezone(sign * delta)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=zone)
    except ValueError:
        return None


def two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


offsets = st.one_of(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+08:00", "-05:30"]),
                    st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), two(0, 23), two(0, 59)))
fractions = st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=9).map(lambda digits: "." + digits))
contract_times = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: f"20{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}",
    two(0, 99), two(1, 12), two(1, 31), st.sampled_from("Tt"), two(0, 23), two(0, 59), two(0, 59), fractions, offsets,
)


def same_moment(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a == b and a.isoformat() == b.isoformat() and type(a.tzinfo) is type(b.tzinfo)
            and a.tzinfo == b.tzinfo and a.fold == b.fold)


@settings(max_examples=1000)
@given(contract_times)
def test_parse_rfc3339_reads_every_contract_form_as_the_group_conversion_did(value):
    assert same_moment(parse_rfc3339(value), reference_parse(value))


@pytest.mark.parametrize("value", ["2024-02-30T00:00:00+08:00", "2024-13-01T00:00:00Z", "2024-05-01 09:30:00+08:00",
                                   "2024-05-01T09:30:00", "2024-05-01T24:00:00Z", "1999-05-01T09:30:00Z", ""])
def test_parse_rfc3339_refuses_what_it_refused(value):
    assert parse_rfc3339(value) is None and reference_parse(value) is None


zones = st.one_of(
    st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes))),
    st.builds(lambda s, us: timezone(timedelta(seconds=s, microseconds=us)), st.integers(-86_399, 86_399),
              st.sampled_from([0, 0, 7])),
    st.sampled_from([timezone.utc, ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]),
)
moments = st.builds(lambda naive, zone: naive.replace(tzinfo=zone),
                    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)), zones)


@settings(max_examples=1000)
@given(moments)
def test_rfc3339_is_isoformat(moment):
    assert rfc3339(moment) == moment.isoformat()


def test_rfc3339_refuses_a_naive_moment():
    with pytest.raises(ValueError):
        rfc3339(datetime(2026, 3, 1, 12, 0))


@settings(max_examples=1000)
@given(moments)
def test_chain_utc_text_is_isoformat_with_microseconds(moment):
    assert _utc(moment) == moment.astimezone(timezone.utc).isoformat(timespec="microseconds")

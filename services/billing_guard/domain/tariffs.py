"""Tariff versions and the catalogue of accepted ones (CP2).

A tariff is rich enough for real plans: a rate per (usage type, destination class), each with
its billing increment, connect fee, optional per-call cap and time-of-day bands, plus a free
voice allowance per bill cycle. Versions are effective-dated; the catalogue answers "which
version was in force at this instant" (CP2.EFFECTIVE_DATING).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.timefmt import parse_rfc3339, rfc3339


@dataclass(frozen=True)
class Band:
    start_minute: int  # minutes after local midnight
    end_minute: int  # exclusive; 1440 = 24:00; end <= start wraps past midnight
    rate: int

    def covers(self, minute: int) -> bool:
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute


@dataclass(frozen=True)
class Rate:
    rate: int  # fen per minute (voice), per message (sms), per MiB (data)
    increment_seconds: int
    connect_fee: int
    cap: int | None
    bands: tuple[Band, ...] = ()

    def rate_at(self, minute: int) -> int:
        for band in self.bands:
            if band.covers(minute):
                return band.rate
        return self.rate


@dataclass(frozen=True)
class TariffVersion:
    tariff_id: str
    version: int
    published_at: datetime
    effective_from: datetime
    free_allowance_seconds: int
    rates: dict = field(default_factory=dict)  # (usage type, destination class) -> Rate


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def tariff_json(payload: dict) -> dict:
    """The catalogue's stored form of a billing.tariff.v1 payload (strings for times)."""
    return {
        "tariffId": payload["tariffId"],
        "version": payload["version"],
        "publishedAt": rfc3339(payload["publishedAt"]),
        "effectiveFrom": rfc3339(payload["effectiveFrom"]),
        "freeAllowanceSeconds": payload.get("freeAllowanceSeconds") or 0,
        "rates": [
            {
                "usageType": r["usageType"],
                "destinationClass": r["destinationClass"],
                "ratePerMinuteMinor": r["ratePerMinuteMinor"],
                "incrementSeconds": r["incrementSeconds"],
                "connectFeeMinor": r["connectFeeMinor"],
                "capMinor": r.get("capMinor"),
                "timeBands": [
                    {"startTime": b["startTime"], "endTime": b["endTime"], "ratePerMinuteMinor": b["ratePerMinuteMinor"]}
                    for b in (r.get("timeBands") or ())
                ],
            }
            for r in payload["rates"]
        ],
    }


def from_json(doc: dict) -> TariffVersion:
    rates = {}
    for r in doc["rates"]:
        rates[(r["usageType"], r["destinationClass"])] = Rate(
            rate=r["ratePerMinuteMinor"],
            increment_seconds=r["incrementSeconds"],
            connect_fee=r["connectFeeMinor"],
            cap=r.get("capMinor"),
            bands=tuple(
                Band(_minute(b["startTime"]), _minute(b["endTime"]), b["ratePerMinuteMinor"])
                for b in r.get("timeBands") or ()
            ),
        )
    return TariffVersion(
        tariff_id=doc["tariffId"],
        version=doc["version"],
        published_at=parse_rfc3339(doc["publishedAt"]),
        effective_from=parse_rfc3339(doc["effectiveFrom"]),
        free_allowance_seconds=doc["freeAllowanceSeconds"],
        rates=rates,
    )


@dataclass(frozen=True)
class Catalogue:
    """Accepted tariff versions, folded from guard.TariffVersionAccepted decisions."""

    versions: dict = field(default_factory=dict)  # tariff id -> tuple[TariffVersion], by version

    def of(self, tariff_id: str) -> tuple[TariffVersion, ...]:
        return self.versions.get(tariff_id, ())

    def get(self, tariff_id: str, version: int) -> TariffVersion | None:
        for v in self.of(tariff_id):
            if v.version == version:
                return v
        return None

    def latest(self, tariff_id: str) -> TariffVersion | None:
        versions = self.of(tariff_id)
        return versions[-1] if versions else None

    def in_force(self, tariff_id: str, at: datetime) -> TariffVersion | None:
        """CP2.EFFECTIVE_DATING: the version with the latest effective_from <= at (ties: the higher version)."""
        best = None
        for v in self.of(tariff_id):
            if v.effective_from <= at and (best is None or (v.effective_from, v.version) > (best.effective_from, best.version)):
                best = v
        return best

    def with_version(self, version: TariffVersion) -> "Catalogue":
        kept = tuple(v for v in self.of(version.tariff_id) if v.version != version.version)
        ordered = tuple(sorted(kept + (version,), key=lambda v: v.version))
        return Catalogue({**self.versions, version.tariff_id: ordered})

"""Dunning policy: credit level x customer tier -> treatment (DN.CREDIT_LEVEL).

The loader refuses any policy that would let an automated voice call answer a first
offence (DN.FIRST_LETTER), and any policy that leaves a (credit level, tier) pair without
a treatment, naming the offending entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, fields, validate

from services.common.errors import ConfigError

CREDIT_LEVELS = ("A", "B", "C", "D", "E")
TIERS = ("diamond", "gold", "silver", "standard")
FIRST_OFFENCE_CHANNELS = ("letter", "manual", "accountManager")
ALL_CHANNELS = FIRST_OFFENCE_CHANNELS + ("sms", "voice")


@dataclass(frozen=True)
class Treatment:
    name: str
    credit_levels: frozenset[str]
    tiers: frozenset[str]
    grace_days: int
    first_offence_channel: str
    repeat_channels: tuple[str, ...]
    voice_cadence_days: int


@dataclass(frozen=True)
class DunningPolicy:
    timezone: ZoneInfo
    lookback_months: int
    quiet_start: time
    quiet_end: time
    treatments: tuple[Treatment, ...]
    late_fee_per_mille: int = 3
    suspend_after_days: int = 30

    def treatment_for(self, credit_level: str, tier: str) -> Treatment:
        for treatment in self.treatments:
            if credit_level in treatment.credit_levels and tier in treatment.tiers:
                return treatment
        raise LookupError(f"no treatment for credit level {credit_level}, tier {tier}")


class _HHMM(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return time.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid") from None

    default_error_messages = {"invalid": "must be a time of day as HH:MM"}


class TreatmentSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 64))
    creditLevels = fields.List(fields.String(validate=validate.OneOf(CREDIT_LEVELS)), required=True, validate=validate.Length(min=1))
    tiers = fields.List(fields.String(validate=validate.OneOf(TIERS)), required=True, validate=validate.Length(min=1))
    graceDays = fields.Integer(required=True, strict=True, validate=validate.Range(0, 60))
    firstOffenceChannel = fields.String(required=True, validate=validate.OneOf(ALL_CHANNELS))
    repeatChannels = fields.List(fields.String(validate=validate.OneOf(ALL_CHANNELS)), required=True, validate=validate.Length(min=1))
    voiceCadenceDays = fields.Integer(required=True, strict=True, validate=validate.Range(1, 30))


class DunningPolicySchema(Schema):
    class Meta:
        unknown = RAISE

    policyVersion = fields.String(required=True, validate=validate.Length(1, 64))
    timezone = fields.String(required=True)
    lookbackMonths = fields.Integer(required=True, strict=True, validate=validate.Range(1, 60))
    quietHours = fields.Dict(keys=fields.String(validate=validate.OneOf(("start", "end"))), values=_HHMM(), required=True)
    treatments = fields.List(fields.Nested(TreatmentSchema), required=True, validate=validate.Length(min=1))
    lateFeePerMilleDaily = fields.Integer(required=True, strict=True, validate=validate.Range(0, 3))
    suspendAfterDays = fields.Integer(required=True, strict=True, validate=validate.Range(30, 365))


def build_policy(document: dict) -> DunningPolicy:
    try:
        zone = ZoneInfo(document["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("timezone", f"unknown time zone {document['timezone']!r}") from None
    quiet = document["quietHours"]
    if set(quiet) != {"start", "end"}:
        raise ConfigError("quietHours", "needs both start and end")
    treatments = []
    for index, entry in enumerate(document["treatments"]):
        where = f"treatments.{index}"
        if entry["firstOffenceChannel"] not in FIRST_OFFENCE_CHANNELS:
            raise ConfigError(
                f"{where}.firstOffenceChannel",
                f"{entry['firstOffenceChannel']!r} is not allowed on a first offence; only letter, manual or"
                " accountManager (DN.FIRST_LETTER)",
            )
        treatments.append(
            Treatment(
                name=entry["name"],
                credit_levels=frozenset(entry["creditLevels"]),
                tiers=frozenset(entry["tiers"]),
                grace_days=entry["graceDays"],
                first_offence_channel=entry["firstOffenceChannel"],
                repeat_channels=tuple(entry["repeatChannels"]),
                voice_cadence_days=entry["voiceCadenceDays"],
            )
        )
    policy = DunningPolicy(
        timezone=zone,
        lookback_months=document["lookbackMonths"],
        quiet_start=quiet["start"],
        quiet_end=quiet["end"],
        treatments=tuple(treatments),
        late_fee_per_mille=document["lateFeePerMilleDaily"],
        suspend_after_days=document["suspendAfterDays"],
    )
    for level in CREDIT_LEVELS:
        for tier in TIERS:
            try:
                policy.treatment_for(level, tier)
            except LookupError:
                raise ConfigError("treatments", f"no treatment covers credit level {level} with tier {tier}") from None
    return policy

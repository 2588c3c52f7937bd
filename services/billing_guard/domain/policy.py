"""The guard's policy file (versioned, validated at load; a wrong field names itself).

Every number SPEC.md marks *default* lives here, not in code: stale window, clock skew, gap
grace period, the huge-fee factor, the reference basket, the CP1 role table, four-eyes
fields, dispute reply days, CP4/CP5 periods.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, fields, validate

from schemas.billing import CUSTOMER_FIELDS, DESTINATION_CLASSES, USAGE_TYPES
from services.common.errors import ConfigError


@dataclass(frozen=True)
class BasketItem:
    usage_type: str
    destination_class: str
    duration_seconds: int
    volume_bytes: int
    local_time: time


@dataclass(frozen=True)
class GuardPolicy:
    timezone: ZoneInfo
    default_tariff_id: str
    max_duration_seconds: int
    clock_skew_seconds: int
    stale_after_months: int
    sequence_gap_grace_seconds: int
    cycle_close_grace_seconds: int
    huge_fee_factor: int
    huge_fee_baseline_cycles: int
    reference_basket: tuple[BasketItem, ...]
    dispute_reply_days: int
    field_roles: dict  # CP1 field -> frozenset of roles allowed to change it
    four_eyes_fields: frozenset
    suspension_overdue_days: int
    restore_hours: int
    termination_days: int
    important_tiers: frozenset  # CP4.IMPORTANT: tiers whose suspension needs an approval
    approver_roles: frozenset
    any_account_approver_roles: frozenset  # may answer for any account manager's customer (M5)
    approval_timeout_hours: int
    approval_escalate_to: str
    notice_hours: int
    long_impact_hours: int
    outage_credit_per_hour: int

    @cached_property
    def cycle_close_grace(self) -> timedelta:
        return timedelta(seconds=self.cycle_close_grace_seconds)

    @cached_property
    def clock_skew(self) -> timedelta:
        """clock_skew_seconds as a timedelta, built once: every CDR's sanity check (CP3.SANITY)
        adds it, and building a timedelta cost more than the comparison it feeds."""
        return timedelta(seconds=self.clock_skew_seconds)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _int(lo: int, hi: int, **kw):
    return fields.Integer(required=True, strict=True, validate=validate.Range(lo, hi), **kw)


class BasketItemSchema(_Strict):
    usageType = fields.String(required=True, validate=validate.OneOf(USAGE_TYPES))
    destinationClass = fields.String(required=True, validate=validate.OneOf(DESTINATION_CLASSES))
    durationSeconds = _int(0, 86_400)
    volumeBytes = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, 10**12))
    localTime = fields.String(required=True, validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))


class CdrSchema(_Strict):
    maxDurationSeconds = _int(60, 7 * 86_400)
    clockSkewSeconds = _int(0, 3_600)
    staleAfterMonths = _int(1, 24)
    sequenceGapGraceSeconds = _int(0, 7 * 86_400)
    cycleCloseGraceSeconds = _int(0, 31 * 86_400)


class HugeFeeSchema(_Strict):
    factor = _int(2, 100)
    baselineCycles = _int(1, 12)


class CustomerDataSchema(_Strict):
    fieldRoles = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CUSTOMER_FIELDS)),
        values=fields.List(fields.String(validate=validate.Length(1, 64)), validate=validate.Length(min=1)),
        required=True,
    )
    fourEyesFields = fields.List(fields.String(validate=validate.OneOf(CUSTOMER_FIELDS)), required=True)


class ImportantApprovalSchema(_Strict):
    importantTiers = fields.List(fields.String(validate=validate.OneOf(("diamond", "gold", "silver", "standard"))),
                                 required=True, validate=validate.Length(min=1))
    approverRoles = fields.List(fields.String(validate=validate.Length(1, 64)), required=True,
                                validate=validate.Length(min=1))
    # Roles (among approverRoles) that may answer for a customer not their own; every other
    # approver must be the request's account manager.
    anyAccountApproverRoles = fields.List(fields.String(validate=validate.Length(1, 64)), required=True)
    timeoutHours = _int(1, 30 * 24)
    escalateTo = fields.String(required=True, validate=validate.Length(1, 64))


class SuspensionSchema(_Strict):
    overdueDays = _int(1, 365)
    restoreHours = _int(1, 240)
    terminationDays = _int(1, 365)
    importantApproval = fields.Nested(ImportantApprovalSchema, required=True)


class WorksSchema(_Strict):
    noticeHours = _int(0, 720)
    longImpactHours = _int(1, 720)
    outageCreditPerHourMinor = _int(0, 100_000)


class GuardPolicySchema(_Strict):
    policyVersion = fields.String(required=True, validate=validate.Length(1, 64))
    timezone = fields.String(required=True)
    defaultTariffId = fields.String(required=True, validate=validate.Length(1, 64))
    cdr = fields.Nested(CdrSchema, required=True)
    hugeFee = fields.Nested(HugeFeeSchema, required=True)
    referenceBasket = fields.List(fields.Nested(BasketItemSchema), required=True, validate=validate.Length(min=1))
    disputeReplyDays = _int(1, 60)
    customerData = fields.Nested(CustomerDataSchema, required=True)
    suspension = fields.Nested(SuspensionSchema, required=True)
    plannedWorks = fields.Nested(WorksSchema, required=True)


# SPEC.md CP1.FOUR_EYES names these; a policy may add fields but never drop one.
REQUIRED_FOUR_EYES = frozenset({"billingAccountOwner", "creditLevel", "customerTier", "importantFlag"})


def build_policy(document: dict) -> GuardPolicy:
    try:
        zone = ZoneInfo(document["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("timezone", f"unknown time zone {document['timezone']!r}") from None
    roles = document["customerData"]["fieldRoles"]
    for name in CUSTOMER_FIELDS:
        if name not in roles:
            raise ConfigError(f"customerData.fieldRoles.{name}", "every billing field needs a role list (CP1.AUTHORIZED)")
    four_eyes = frozenset(document["customerData"]["fourEyesFields"])
    missing = sorted(REQUIRED_FOUR_EYES - four_eyes)
    if missing:
        raise ConfigError("customerData.fourEyesFields", f"must include {', '.join(missing)} (CP1.FOUR_EYES)")
    cdr, huge, susp, works = document["cdr"], document["hugeFee"], document["suspension"], document["plannedWorks"]
    approval = susp["importantApproval"]
    if not set(approval["anyAccountApproverRoles"]) <= set(approval["approverRoles"]):
        raise ConfigError("suspension.importantApproval.anyAccountApproverRoles", "every role must be in approverRoles")
    return GuardPolicy(
        timezone=zone,
        default_tariff_id=document["defaultTariffId"],
        max_duration_seconds=cdr["maxDurationSeconds"],
        clock_skew_seconds=cdr["clockSkewSeconds"],
        stale_after_months=cdr["staleAfterMonths"],
        sequence_gap_grace_seconds=cdr["sequenceGapGraceSeconds"],
        cycle_close_grace_seconds=cdr["cycleCloseGraceSeconds"],
        huge_fee_factor=huge["factor"],
        huge_fee_baseline_cycles=huge["baselineCycles"],
        reference_basket=tuple(
            BasketItem(
                usage_type=i["usageType"],
                destination_class=i["destinationClass"],
                duration_seconds=i["durationSeconds"],
                volume_bytes=i["volumeBytes"],
                local_time=time.fromisoformat(i["localTime"]),
            )
            for i in document["referenceBasket"]
        ),
        dispute_reply_days=document["disputeReplyDays"],
        field_roles={f: frozenset(r) for f, r in roles.items()},
        four_eyes_fields=four_eyes,
        suspension_overdue_days=susp["overdueDays"],
        restore_hours=susp["restoreHours"],
        termination_days=susp["terminationDays"],
        important_tiers=frozenset(susp["importantApproval"]["importantTiers"]),
        approver_roles=frozenset(susp["importantApproval"]["approverRoles"]),
        any_account_approver_roles=frozenset(approval["anyAccountApproverRoles"]),
        approval_timeout_hours=susp["importantApproval"]["timeoutHours"],
        approval_escalate_to=susp["importantApproval"]["escalateTo"],
        notice_hours=works["noticeHours"],
        long_impact_hours=works["longImpactHours"],
        outage_credit_per_hour=works["outageCreditPerHourMinor"],
    )

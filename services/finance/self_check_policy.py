"""The self-check's limits and responsible departments (服务标准自查), a versioned policy file
validated at load: a wrong field names itself. Departments follow the seed's Jiangsu table
(集团牵头部门 / 省内分工 columns) where it names one for the standard."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, fields, validate

from services.common.errors import ConfigError
from services.common.policy import load_policy

DEFAULT = Path(__file__).resolve().parent / "policy" / "self_check.json"
FILE_NAME = "self_check.json"  # its name inside WUGUAN_POLICY_DIR, beside the services' files


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _dept():
    return fields.String(required=True, validate=validate.Length(1, 64))


def _count():
    return fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000))


class _DisputeReply(_Strict):
    limitDays = fields.Integer(required=True, strict=True, validate=validate.Range(1, 90))
    department = _dept()


class _Restoration(_Strict):
    limitHours = fields.Integer(required=True, strict=True, validate=validate.Range(1, 720))
    department = _dept()


class _CutoverNotice(_Strict):
    minNoticeHours = fields.Integer(required=True, strict=True, validate=validate.Range(0, 720))
    maxShortNotices = _count()
    department = _dept()


class _CardReplacement(_Strict):
    p99LimitSeconds = fields.Float(required=True, validate=validate.Range(0.001, 3600))
    liveWindowSeconds = fields.Integer(required=True, strict=True, validate=validate.Range(1, 86_400))
    department = _dept()


class _Count(_Strict):
    maxCount = _count()
    department = _dept()


class _QuietHours(_Count):
    start = fields.Time(required=True, format="%H:%M")
    end = fields.Time(required=True, format="%H:%M")


class _HugeFee(_Strict):
    maxUnnotified = _count()
    department = _dept()


class _TariffIncrease(_Strict):
    maxUnapproved = _count()
    department = _dept()


class _Rows(_Strict):
    disputeReply = fields.Nested(_DisputeReply, required=True)
    restoration = fields.Nested(_Restoration, required=True)
    cutoverNotice = fields.Nested(_CutoverNotice, required=True)
    cardReplacement = fields.Nested(_CardReplacement, required=True)
    firstArrearsVoice = fields.Nested(_Count, required=True)
    quietHours = fields.Nested(_QuietHours, required=True)
    hugeFee = fields.Nested(_HugeFee, required=True)
    tariffIncrease = fields.Nested(_TariffIncrease, required=True)


class SelfCheckPolicySchema(_Strict):
    policyVersion = fields.String(required=True, validate=validate.Length(1, 64))
    timezone = fields.String(required=True)
    lookbackDays = fields.Integer(required=True, strict=True, validate=validate.Range(1, 3650))
    rows = fields.Nested(_Rows, required=True)


@dataclass(frozen=True)
class SelfCheckPolicy:
    version: str
    timezone: ZoneInfo
    lookback_days: int
    rows: dict  # row name -> its validated settings
    quiet_start: time
    quiet_end: time


def _build(document: dict) -> dict:
    try:
        zone = ZoneInfo(document["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("timezone", f"unknown time zone {document['timezone']!r}") from None
    return {"timezone": zone, "lookback_days": document["lookbackDays"], "rows": document["rows"]}


def load_self_check_policy(path: Path | None = None) -> SelfCheckPolicy:
    if path is None:
        folder = os.environ.get("WUGUAN_POLICY_DIR")
        path = Path(folder) / FILE_NAME if folder and (Path(folder) / FILE_NAME).exists() else DEFAULT
    loaded = load_policy(path, SelfCheckPolicySchema(), _build)
    rows = loaded.rules["rows"]
    return SelfCheckPolicy(loaded.version, loaded.rules["timezone"], loaded.rules["lookback_days"], rows,
                           rows["quietHours"]["start"], rows["quietHours"]["end"])

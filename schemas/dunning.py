"""Payload of dunning.delivery.v1: what happened when a reminder was delivered (CP4.REMINDED)."""
from __future__ import annotations

from .fields import Choice, Id, StrictSchema, Timestamp


class ReminderDeliveryPayload(StrictSchema):
    """dunning.delivery.v1: outcome of one delivery attempt of a scheduled reminder."""

    reminderId = Id("Reminder id from the dunning decision that scheduled it.")
    accountId = Id()
    channel = Choice(("letter", "manual", "accountManager", "sms", "voice"))
    outcome = Choice(("posted", "answered", "noAnswer", "failed"))
    attemptedAt = Timestamp()

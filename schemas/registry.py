"""Which topics exist, what schema each carries, and how each is keyed."""
from __future__ import annotations

from typing import Any, NamedTuple

from marshmallow import Schema

from .billing import (
    BillPayload,
    CdrPayload,
    CustomerChangePayload,
    CutoverPayload,
    DisputePayload,
    PaymentPayload,
    RestorationPayload,
    SuspensionApprovalPayload,
    TariffPayload,
)
from .decision_types.guard import CDR_RATED, CDR_UNRATED, STALE_CDR_HELD
from .cards import CardComplaintPayload, CardInventoryPayload
from .dunning import ReminderDeliveryPayload
from .errors import UNKNOWN_TOPIC, InvalidEvent

# Input topic -> payload schema class. The version lives in the topic name; a breaking change
# is a new topic (billing.cdr.v2), so old and new producers can run side by side.
INPUT_TOPICS: dict[str, type[Schema]] = {
    "billing.cdr.v1": CdrPayload,
    "billing.tariff.v1": TariffPayload,
    "billing.customer.v1": CustomerChangePayload,
    "billing.cutover.v1": CutoverPayload,
    "billing.bill.v1": BillPayload,
    "billing.payment.v1": PaymentPayload,
    "billing.dispute.v1": DisputePayload,
    "billing.restoration.v1": RestorationPayload,
    "billing.approval.v1": SuspensionApprovalPayload,
    "cards.inventory.v1": CardInventoryPayload,
    "cards.complaint.v1": CardComplaintPayload,
    "dunning.delivery.v1": ReminderDeliveryPayload,
}

# schemaVersion values a consumer accepts per topic (compatible revisions within a topic);
# the producer side writes the current one.
SUPPORTED_SCHEMA_VERSIONS: dict[str, frozenset[int]] = {t: frozenset({1}) for t in INPUT_TOPICS}
CURRENT_SCHEMA_VERSION: dict[str, int] = {t: max(v) for t, v in SUPPORTED_SCHEMA_VERSIONS.items()}

# Producing service -> its decision topic.
DECISION_TOPICS: dict[str, str] = {
    "billing_guard": "guard.decisions.v1",
    "dunning": "dunning.decisions.v1",
    "cards": "cards.decisions.v1",
}



class Repartition(NamedTuple):
    """A service's own decisions sent again, keyed by another field, to a topic the service
    itself consumes (Kafka Streams' repartition topic): a state kept per that field then has one
    writer, the owner of its partition. The relay publishes them from the log, in commit order."""

    topic: str
    decision_types: frozenset[str]
    key_field: str  # a field of the decision's payload
    # The payload fields the reader decides on: a note carries them and the decision's identity,
    # not its whole body (a rated CDR's is ~1.2 kB, with both phone numbers).
    note_fields: tuple[str, ...] = ()


# Producing service -> its repartition topic. CP3.SEQUENCE_GAP: a switch numbers its CDRs, but
# CDRs are keyed by account, so each switch's sequence reaches every partition; its CDRs' charge
# decisions, keyed by switch, give each switch's sequence one reader and one writer.
REPARTITION_TOPICS: dict[str, Repartition] = {
    "billing_guard": Repartition("wuguan.billing_guard.switch-sequence",
                                 frozenset({CDR_RATED, CDR_UNRATED, STALE_CDR_HELD}), "switchId",
                                 ("switchId", "sequenceNumber", "usageId")),
}

# Payload field used as the Kafka key, so one account's (one card's) events stay in order.
# Topics without an account use their own aggregate id. cards.inventory batchIssued has no
# single card and is keyed by batchId instead: see partition_key().
PARTITION_KEY: dict[str, str] = {
    "billing.cdr.v1": "accountId",
    "billing.tariff.v1": "tariffId",
    "billing.customer.v1": "accountId",
    "billing.cutover.v1": "workId",
    "billing.bill.v1": "accountId",
    "billing.payment.v1": "accountId",
    "billing.dispute.v1": "accountId",
    "billing.restoration.v1": "accountId",
    "billing.approval.v1": "accountId",
    "cards.inventory.v1": "cardSerial",
    "cards.complaint.v1": "cardSerial",
    "dunning.delivery.v1": "accountId",
}

# Built once: schema construction is far more expensive than a load, and load is thread-safe.
_PAYLOAD_SCHEMAS: dict[str, Schema] = {topic: cls() for topic, cls in INPUT_TOPICS.items()}


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def payload_schema(topic: str) -> Schema:
    """The shared payload schema instance of an input topic; InvalidEvent(unknown_topic) if none."""
    schema = _PAYLOAD_SCHEMAS.get(topic) if isinstance(topic, str) else None
    if schema is None:
        raise InvalidEvent(UNKNOWN_TOPIC, f"{str(topic)[:100]!r} is not an input topic of this contract")
    return schema


def partition_key_field(topic: str, payload: dict[str, Any]) -> str:
    """The payload field whose value is the Kafka key of an event of `topic`."""
    if topic == "cards.inventory.v1" and payload.get("action") == "batchIssued":
        return "batchId"
    return PARTITION_KEY[topic]


def partition_key(topic: str, payload: dict[str, Any]) -> str:
    """Kafka key for an event of `topic` with this (raw or decoded) payload."""
    return payload[partition_key_field(topic, payload)]

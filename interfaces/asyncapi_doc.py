"""docs/asyncapi.yaml: every Kafka topic Wuguan reads or writes, as an AsyncAPI 3.0 document.

Everything comes from the code: the topics from localstack.topics.all_topics (what `wuguan topics
create` makes), the message schemas from schemas.generate (the same JSON Schema files upstream
teams validate with), keys from schemas.registry, the consumers from each service's decider,
the decision types from schemas.decision_payloads and the examples from schemas/examples/.
A topic this module cannot classify stops the generation, so a new topic is never left out.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import orjson
import yaml

from schemas.decision_payloads import DECISION_PAYLOADS
from schemas.generate import DLQ_FILE, SUFFIX, decision_type_file, documents
from schemas.jsonschema import doc_summary
from schemas.registry import (
    DECISION_TOPICS, INPUT_TOPICS, PARTITION_KEY, REPARTITION_TOPICS, SUPPORTED_SCHEMA_VERSIONS, dlq_topic,
)
from services.common.audit import checkpoints
from services.common.localstack.topics import all_topics
from services.common.runtime.dead_letter_relay import CONSUMER_HEADER, ERROR_CODE_HEADER
from services.common.runtime.decision_inputs import DECISION_TYPE_HEADER, NOTE_ENVELOPE, note_of
from services.common.runtime.timers import TIMER_TOPIC_SUFFIX, timer_topic
from services.composition import SERVICES

PATH = "docs/asyncapi.yaml"
EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples"
JSON_SCHEMA_2020 = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING = "0.5.0"
PARTITIONING = ("By the message key with Kafka's default partitioner (murmur2 of the key bytes, modulo the "
                "partition count); WUGUAN_PARTITIONS partitions per topic (6 by default).")
ORDERING = ("Ordered per partition only: every event of one key goes to one partition, so one "
            "{what}'s events are decided in the order they were published. There is no order across keys.")


def consumers() -> dict[str, tuple[str, ...]]:
    """Service -> the topics its decider reads (from services/<service>/decider.py)."""
    out = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.decider")
        out[service] = tuple(module.INPUT_TOPICS)
    return out


def _schema_name(file_name: str) -> str:
    return file_name.removesuffix(SUFFIX)


def _component_schemas() -> dict[str, Any]:
    """Every JSON Schema file, with its internal $refs rewritten to its place in this document."""
    out = {}
    for file_name, doc in documents().items():
        name = _schema_name(file_name)
        # Without its $id and $schema: a $ref inside a resource with an $id resolves against that $id.
        doc = {k: v for k, v in doc.items() if k not in ("$id", "$schema")}
        text = orjson.dumps(doc).decode().replace('"#/$defs/', f'"#/components/schemas/{name}/$defs/')
        out[name] = orjson.loads(text)
    return out


def _payload(file_name: str) -> dict[str, Any]:
    return {"schemaFormat": JSON_SCHEMA_2020, "schema": {"$ref": f"#/components/schemas/{_schema_name(file_name)}"}}


def _examples(folder: str, keep=lambda obj: True) -> list[dict[str, Any]]:
    out = []
    for path in sorted((EXAMPLES / folder).glob("*.json")):
        obj = orjson.loads(path.read_bytes())
        if keep(obj):
            out.append({"name": path.stem, "payload": obj})
    return out


def _key(description: str, nullable: bool = False) -> dict[str, Any]:
    return {"kafka": {"key": {"type": ["string", "null"] if nullable else "string", "description": description},
                      "bindingVersion": KAFKA_BINDING}}


def _headers(names: dict[str, str]) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {"type": "string", "description": d} for n, d in names.items()}}


def input_message(topic: str) -> dict[str, Any]:
    payload_cls = INPUT_TOPICS[topic]
    versions = sorted(SUPPORTED_SCHEMA_VERSIONS[topic])
    key = PARTITION_KEY[topic]
    if topic == "cards.inventory.v1":
        key_text = "payload.cardSerial (payload.batchId for action batchIssued)"
    else:
        key_text = f"payload.{key}"
    return {
        "name": topic, "title": f"{topic} event", "contentType": "application/json",
        "summary": doc_summary(payload_cls) or topic,
        "description": f"Envelope with schemaVersion in {versions}. Kafka key: {key_text}.",
        "payload": _payload(topic + SUFFIX),
        "bindings": _key(f"The event's {key_text}; a message with another key is dead-lettered key_mismatch."),
        "examples": _examples(topic),
        "x-schema-versions": versions,
        "x-partition-key": key_text,
    }


def decision_message(decision_type: str) -> dict[str, Any]:
    return {
        "name": decision_type, "title": decision_type, "contentType": "application/json",
        "summary": " ".join((DECISION_PAYLOADS[decision_type].__doc__ or decision_type).split()),
        "payload": _payload(decision_type_file(decision_type)),
        "headers": _headers({DECISION_TYPE_HEADER: "The decisionType, to skip decisions without decoding them.",
                             "wuguan-global-position": "The decision's position in the event store."}),
        "bindings": _key("The decision's streamId (the event-store stream it belongs to)."),
        "examples": _examples(_decision_topic(decision_type), lambda d: d["decisionType"] == decision_type),
    }


def repartition_message(service: str) -> dict[str, Any]:
    """The notes of a service's own decisions, re-keyed on its repartition topic (internal)."""
    repartition = REPARTITION_TOPICS[service]
    types = sorted(repartition.decision_types)
    examples = _examples(DECISION_TOPICS[service], lambda d: d["decisionType"] in repartition.decision_types)
    return {
        "name": repartition.topic, "title": f"{service}'s decisions keyed by {repartition.key_field} (internal)",
        "contentType": "application/json",
        "summary": f"A JSON array of notes of decisions ({', '.join(types)}) published on "
                   f"{DECISION_TOPICS[service]}, sent again keyed by payload.{repartition.key_field}: the decisions "
                   f"of one key among a page the relay published, in commit order. A note is the decision's "
                   f"{', '.join(NOTE_ENVELOPE)} and, of its payload, {', '.join(repartition.note_fields)} (as in "
                   f"the decision; null where the decision has none). Read only by {service}, which decides "
                   "each element on its own. Not a contract for other teams.",
        "payload": {"schemaFormat": JSON_SCHEMA_2020, "schema": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": [*NOTE_ENVELOPE, "payload"],
            "properties": {
                "decisionId": {"type": "string"}, "decisionType": {"enum": types},
                "businessTime": {"type": "string", "format": "date-time"}, "service": {"const": service},
                "correlationId": {"type": ["string", "null"]},
                "causedBy": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "payload": {"type": "object", "required": [repartition.key_field],
                            "properties": {f: {"description": "As in the decision's payload."}
                                           for f in repartition.note_fields}},
            }}}},
        "bindings": _key(f"The decisions' payload.{repartition.key_field}."),
        "examples": [{**e, "payload": [note_of(e["payload"], repartition.note_fields)]} for e in examples],
    }


def _decision_topic(decision_type: str) -> str:
    return next(t for t in DECISION_TOPICS.values() if t.split(".")[0] == decision_type.split(".")[0])


def dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter", "title": "Dead letter", "contentType": "application/json",
        "summary": "An input a service refused, with the reason; the original bytes are kept for replay.",
        "payload": _payload(DLQ_FILE),
        "headers": _headers({CONSUMER_HEADER: "The service that refused the input.",
                             ERROR_CODE_HEADER: "error.code of the letter."}),
        "bindings": _key("The original input's key (null when it had none).", nullable=True),
        "examples": _examples("dlq"),
    }


def timer_message_spec() -> dict[str, Any]:
    return {
        "name": "TimerDue", "title": "Due timer (internal)", "contentType": "application/json",
        "summary": "A wake-up a decision asked for, published when due on the business clock; read only by "
                   "the service that asked. Not a contract for other teams.",
        "payload": {"type": "object", "required": ["eventId", "eventType", "eventTime", "payload"],
                    "properties": {"eventId": {"type": "string"}, "eventType": {"const": "wuguan.timer.v1"},
                                   "eventTime": {"type": "string", "format": "date-time"},
                                   "payload": {"type": "object"}}},
        "bindings": _key("The partition key of the stream that asked (its account)."),
    }


def checkpoint_message() -> dict[str, Any]:
    payload = {k: v for k, v in checkpoints.MESSAGE_SCHEMA.items() if k != "$schema"}
    return {
        "name": "AuditCheckpoint", "title": "Signed checkpoint of a service's hash chains",
        "contentType": "application/json",
        "summary": "Each service's RFC 9162 tree sizes and roots of its chains, with consistency proofs, signed "
                   "(Ed25519) every 60 s or 10,000 decisions: the witness `wuguan verify --checkpoints` checks the "
                   "event store against (docs/tamper-evidence.md).",
        "payload": {"schemaFormat": JSON_SCHEMA_2020, "schema": payload},
        "bindings": _key("The signing service's name."),
    }


def audit_channel() -> dict[str, Any]:
    topic = checkpoints.TOPIC
    return _channel(topic, "Audit: the signed checkpoints of every service, the independent witness of the event "
                           "store. One partition, kept for ever; per service, checkpoints are numbered 1, 2, 3 ... "
                           "and each names its predecessor's digest. A repeat of one checkpoint (a retried publish) "
                           "is harmless. Read by auditors and `wuguan verify --checkpoints`.",
                    {"AuditCheckpoint": _ref("components", "messages", "AuditCheckpoint")}, 1)


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(parts)}


def _channel(topic: str, description: str, messages: dict[str, Any], partitions: int) -> dict[str, Any]:
    return {"address": topic, "title": topic, "description": description, "messages": messages,
            "bindings": {"kafka": {"topic": topic, "partitions": partitions, "bindingVersion": KAFKA_BINDING}},
            "x-partitioning": PARTITIONING}


def channel(topic: str, readers: dict[str, list[str]], partitions: int) -> dict[str, Any]:
    """The channel of one topic; raises for a topic of no known kind."""
    read_by = ", ".join(readers.get(topic, [])) or "upstream teams"
    if topic in INPUT_TOPICS:
        what = "account" if PARTITION_KEY[topic] == "accountId" else PARTITION_KEY[topic].removesuffix("Id")
        return _channel(topic, f"Upstream input, read by {read_by}. {ORDERING.format(what=what)} Invalid events "
                               f"go to {dlq_topic(topic)} with the reason.",
                        {topic: _ref("components", "messages", topic)}, partitions)
    if topic.endswith(".dlq") and (topic.removesuffix(".dlq") in INPUT_TOPICS
                                   or any(r.topic == topic.removesuffix(".dlq") for r in REPARTITION_TOPICS.values())):
        return _channel(topic, f"Dead letters of {topic.removesuffix('.dlq')}: every input a service refused, "
                               "with error.code and error.message (field paths, never values). Ordered by the "
                               "original's key; a letter may arrive after later decisions, or twice: dedupe on "
                               "consumer, originalTopic, partition, offset.",
                        {"DeadLetter": _ref("components", "messages", "DeadLetter")}, partitions)
    if topic in DECISION_TOPICS.values():
        service = next(s for s, t in DECISION_TOPICS.items() if t == topic)
        types = sorted(t for t in DECISION_PAYLOADS if _decision_topic(t) == topic)
        return _channel(topic, f"Every decision of {service}, read by {read_by}: the audit trail of what was "
                               "decided, under which rules and policy version, caused by which inputs. Each is "
                               "also kept hash-chained in the event store. Ordered per streamId (the key); "
                               "replays give the same ids and business times (docs/contract.md).",
                        {t: _ref("components", "messages", t) for t in types}, partitions)
    repartitioned = next((s for s, r in REPARTITION_TOPICS.items() if r.topic == topic), None)
    if repartitioned is not None:
        key = REPARTITION_TOPICS[repartitioned].key_field
        return _channel(topic, f"Internal: {repartitioned}'s own decisions re-keyed by payload.{key}, so that a state "
                               f"kept per {key.removesuffix('Id')} has one writer, the owner of its partition (a "
                               "Kafka Streams repartition topic). Published by its relay from the event store in "
                               "commit order, at least once; read only by "
                               f"{repartitioned}, which makes a redelivery change nothing. It carries only decisions the "
                               f"service itself stored; one it cannot read goes to {dlq_topic(topic)} like any input.",
                        {topic: _ref("components", "messages", topic)}, partitions)
    if topic == checkpoints.TOPIC:
        return audit_channel()
    if topic.endswith(TIMER_TOPIC_SUFFIX):
        return _channel(topic, "Internal: due timers of one service, keyed like the stream that set them.",
                        {"TimerDue": _ref("components", "messages", "TimerDue")}, partitions)
    raise ValueError(f"topic {topic!r} is of no kind docs/asyncapi.yaml knows: describe it in interfaces/asyncapi_doc.py")


def operations(read: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    ops: dict[str, Any] = {}

    def op(name: str, action: str, topic: str, summary: str) -> None:
        ops[name] = {"action": action, "channel": _ref("channels", topic), "summary": summary}

    for service, topics in read.items():
        for topic in topics:
            op(f"{service}.receive.{topic}", "receive", topic, f"{service} decides on {topic}.")
            if topic in INPUT_TOPICS:
                op(f"{service}.send.{dlq_topic(topic)}", "send", dlq_topic(topic),
                   f"{service} dead-letters the {topic} inputs it refuses.")
        op(f"{service}.send.{DECISION_TOPICS[service]}", "send", DECISION_TOPICS[service],
           f"{service} publishes every decision it makes.")
        op(f"{service}.send.{timer_topic(service)}", "send", timer_topic(service), f"{service}'s due timers.")
        if service in REPARTITION_TOPICS:
            repartition = REPARTITION_TOPICS[service]
            op(f"{service}.send.{repartition.topic}", "send", repartition.topic,
               f"{service}'s relay sends its decisions again, keyed by payload.{repartition.key_field}.")
        op(f"{service}.receive.{timer_topic(service)}", "receive", timer_topic(service), f"{service}'s due timers.")
        op(f"{service}.send.{checkpoints.TOPIC}", "send", checkpoints.TOPIC,
           f"{service} signs and publishes checkpoints of its chains.")
    return ops


def document(partitions: int = 6) -> dict[str, Any]:
    read = consumers()
    readers: dict[str, list[str]] = {}
    for service, topics in read.items():
        for topic in topics:
            readers.setdefault(topic, []).append(service)
    messages = {topic: input_message(topic) for topic in INPUT_TOPICS}
    messages.update({t: decision_message(t) for t in sorted(DECISION_PAYLOADS)})
    messages["DeadLetter"] = dead_letter_message()
    messages["TimerDue"] = timer_message_spec()
    messages.update({r.topic: repartition_message(service) for service, r in REPARTITION_TOPICS.items()})
    messages["AuditCheckpoint"] = checkpoint_message()
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Wuguan topics", "version": "1.0.0",
                 "description": "Every Kafka topic Wuguan reads or writes: upstream inputs, decisions (the audit "
                                "trail), signed checkpoints, dead letters, internal timers and repartition "
                                "topics. Generated by `python -m interfaces.generate` from the contracts in "
                                "schemas/; money is integer fen, "
                                "times RFC 3339 with offset. A breaking change is a new topic (.v2)."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": "kafka:9092", "protocol": "kafka",
                              "description": "KAFKA_BOOTSTRAP_SERVERS of the deployment."}},
        "channels": {topic: channel(topic, readers, partitions) for topic in all_topics()},
        "operations": operations(read),
        "components": {"messages": messages, "schemas": _component_schemas()},
    }


def render() -> bytes:
    text = yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=110)
    return ("# Generated by `python -m interfaces.generate` from the code: do not edit.\n" + text).encode()

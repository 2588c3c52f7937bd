"""Write the JSON Schema files in schemas/json/ from the marshmallow contracts.

    python -m schemas.generate           # rewrite the files
    python -m schemas.generate --check   # exit 1 and name the stale files (CI, tests)

The marshmallow schemas are the source of truth; the JSON files are checked in so upstream
teams can validate without Python.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from .decision import DecisionSchema
from .decision_payloads import DECISION_PAYLOADS
from .envelope import DeadLetterSchema, EnvelopeSchema
from .jsonschema import def_name, doc_summary, document
from .registry import DECISION_TOPICS, INPUT_TOPICS, SUPPORTED_SCHEMA_VERSIONS, dlq_topic

OUT_DIR = Path(__file__).resolve().parent / "json"
SUFFIX = ".schema.json"
DLQ_FILE = "dlq" + SUFFIX
_ID_PREFIX = "urn:wuguan:schema:"


def documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, for every published topic."""
    docs: dict[str, dict[str, Any]] = {}
    envelope = EnvelopeSchema()
    for topic, payload_cls in INPUT_TOPICS.items():
        payload = payload_cls()
        name = def_name(payload_cls)
        docs[topic + SUFFIX] = document(
            envelope,
            schema_id=_ID_PREFIX + topic,
            title=topic,
            description=(
                f"{_first_line(payload_cls)} Input event envelope (TMF688-like); "
                f"invalid events go to {dlq_topic(topic)}."
            ),
            overrides={
                "eventType": {"description": "The topic name.", "const": topic},
                "schemaVersion": {
                    "description": "Payload schema version within the topic.",
                    "type": "integer",
                    "enum": sorted(SUPPORTED_SCHEMA_VERSIONS[topic]),
                },
                "payload": {"$ref": f"#/$defs/{name}"},
            },
            extra_defs={name: payload},
        )
    decision = DecisionSchema()
    for service, topic in DECISION_TOPICS.items():
        docs[topic + SUFFIX] = document(
            decision,
            schema_id=_ID_PREFIX + topic,
            title=topic,
            description=f"Decision events published by the {service} service (SPEC 5, A.EVENT).",
            overrides={"service": {"description": "Producing service.", "const": service}},
        )
    docs.update(decision_type_documents(decision))
    docs[DLQ_FILE] = document(
        DeadLetterSchema(),
        schema_id=_ID_PREFIX + "dlq",
        title="<input topic>.dlq",
        description="Dead letter: an input that failed the contract or processing, with the reason.",
    )
    return docs


def decision_type_file(decision_type: str) -> str:
    return f"decision.{decision_type}{SUFFIX}"


def decision_type_documents(decision: DecisionSchema) -> dict[str, dict[str, Any]]:
    """One document per decision type: the decision envelope with that type's payload."""
    service_by_prefix = {topic.split(".")[0]: service for service, topic in DECISION_TOPICS.items()}
    docs = {}
    for decision_type, payload_cls in sorted(DECISION_PAYLOADS.items()):
        service = service_by_prefix[decision_type.split(".")[0]]
        name = def_name(payload_cls)
        docs[decision_type_file(decision_type)] = document(
            decision,
            schema_id=_ID_PREFIX + "decision:" + decision_type,
            title=decision_type,
            description=(f"A {decision_type} decision on {DECISION_TOPICS[service]}: the decision "
                         "envelope with this type's payload (SPEC 5, A.EVENT)."),
            overrides={
                "decisionType": {"description": "Kind of decision.", "const": decision_type},
                "service": {"description": "Producing service.", "const": service},
                "payload": {"$ref": f"#/$defs/{name}"},
            },
            extra_defs={name: payload_cls()},
        )
    return docs


def _first_line(cls: type) -> str:
    return doc_summary(cls)


def render(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def stale_files(out_dir: Path = OUT_DIR) -> list[str]:
    """Paths (relative to out_dir) that are missing, outdated, or no longer generated."""
    expected = {name: render(doc) for name, doc in documents().items()}
    stale = []
    for name, content in expected.items():
        path = out_dir / name
        if not path.is_file() or path.read_bytes() != content:
            stale.append(name)
    if out_dir.is_dir():
        stale.extend(p.name for p in sorted(out_dir.glob("*" + SUFFIX)) if p.name not in expected)
    return sorted(stale)


def write(out_dir: Path = OUT_DIR) -> list[str]:
    """Rewrite what is stale and delete orphans; returns the names touched."""
    expected = {name: render(doc) for name, doc in documents().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    touched = []
    for name in stale_files(out_dir):
        path = out_dir / name
        if name in expected:
            path.write_bytes(expected[name])
        else:
            path.unlink()
        touched.append(name)
    return touched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: schemas/json/{name}", file=sys.stderr)
        if stale:
            print("run: python -m schemas.generate", file=sys.stderr)
            return 1
        print(f"schemas/json is up to date ({len(documents())} files)")
        return 0
    touched = write()
    for name in touched:
        action = "wrote" if (OUT_DIR / name).exists() else "removed"
        print(f"{action}: schemas/json/{name}")
    if not touched:
        print("schemas/json is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

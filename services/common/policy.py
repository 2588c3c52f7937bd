"""Loads versioned policy files, validated at start (a wrong field names itself).

The recorded policy version is the file's declared version plus a digest of its content,
so every decision names exactly the rules text it was made under.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import marshmallow
import orjson

from .errors import ConfigError


@dataclass(frozen=True)
class LoadedPolicy:
    version: str
    rules: Any
    path: str


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(prefix or "<root>", "; ".join(messages))]
    if isinstance(messages, list):
        out = []
        for item in messages:
            out.extend(_flatten(item, prefix))
        return out
    return [(prefix or "<root>", str(messages))]


def load_policy(path: Path, schema: marshmallow.Schema, build: Callable[[dict], Any]) -> LoadedPolicy:
    """Parse, validate and build a policy; raises ConfigError naming the first bad field."""
    where = str(path)
    try:
        raw_bytes = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(where, f"cannot read policy file: {exc.strerror}") from None
    try:
        document = orjson.loads(raw_bytes)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(where, f"not valid JSON: {exc}") from None
    try:
        loaded = schema.load(document)
    except marshmallow.ValidationError as exc:
        field, problem = sorted(_flatten(exc.messages))[0]
        raise ConfigError(f"{where}: {field}", problem) from None
    try:
        rules = build(loaded)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.field}", exc.problem) from None
    digest = hashlib.sha256(raw_bytes).hexdigest()[:12]
    return LoadedPolicy(version=f"{loaded['policyVersion']}@{digest}", rules=rules, path=where)

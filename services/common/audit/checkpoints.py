"""Signed checkpoints: what a service attests about its chains, and how a witness checks them.

A checkpoint names, for each chain of the service that grew since the last one, its Merkle tree
size and root (RFC 9162, over the chain's link hashes) and the consistency proof from the size
signed before. Its body also carries the digest of the service's previous checkpoint, so the
checkpoints form a chain of their own, and the Ed25519 signature covers all of it.

Pure: building a checkpoint and checking a service's sequence of them need no database and no
broker (`wuguan check-proof` and the witness's first pass use this module alone).
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from . import merkle
from .signing import sign, signature_valid

TOPIC = "audit.checkpoints.v1"
TYPE = "wuguan.AuditCheckpoint"
SIGNING_CONTEXT = b"wuguan-checkpoint-v1\x00"  # a signature over a checkpoint is never valid for anything else


_HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
# The published contract of a checkpoint message (docs/tamper-evidence.md); parse() enforces the same.
MESSAGE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A signed checkpoint of a service's hash chains (audit.checkpoints.v1)",
    "type": "object",
    "required": ["body", "signature"],
    "properties": {
        "signature": {"type": "string", "description": "Ed25519 over 'wuguan-checkpoint-v1' NUL and the body's"
                                                       " canonical JSON (keys sorted, no spaces), base64"},
        "body": {
            "type": "object",
            "required": ["type", "version", "service", "seq", "previous", "signedAt", "keyId", "chains"],
            "properties": {
                "type": {"const": TYPE}, "version": {"const": 1}, "service": {"type": "string"},
                "seq": {"type": "integer", "minimum": 1, "description": "1, 2, 3 ... per service"},
                "previous": {"type": "string", "description": "SHA-256 (hex) of the previous checkpoint's canonical"
                                                              " body; empty for the first"},
                "signedAt": {"type": "string", "format": "date-time"},
                "keyId": {"type": "string", "description": "first 8 bytes (hex) of SHA-256 of the raw public key"},
                "chains": {"type": "array", "items": {
                    "type": "object",
                    "required": ["chainId", "treeSize", "rootHash", "headHash", "previousSize", "consistency"],
                    "properties": {
                        "chainId": {"type": "string", "description": "<service>/<input topic>/<partition>"},
                        "treeSize": {"type": "integer", "minimum": 1},
                        "rootHash": {**_HASH, "description": "RFC 9162 tree head over the chain's link hashes"},
                        "headHash": {**_HASH, "description": "link hash of the chain's event at treeSize"},
                        "previousSize": {"type": "integer", "minimum": 0},
                        "consistency": {"type": "array", "items": _HASH,
                                        "description": "RFC 9162 consistency proof from previousSize"},
                    },
                }},
            },
        },
    },
}


@dataclass(frozen=True)
class ChainHead:
    """One chain in one checkpoint."""

    chain_id: str
    tree_size: int
    root: bytes
    head_hash: bytes  # the link hash of the chain's last event: the tree's last leaf entry
    previous_size: int
    consistency: tuple[bytes, ...]

    def as_json(self) -> dict:
        return {"chainId": self.chain_id, "treeSize": self.tree_size, "rootHash": self.root.hex(),
                "headHash": self.head_hash.hex(), "previousSize": self.previous_size,
                "consistency": [p.hex() for p in self.consistency]}

    @classmethod
    def from_json(cls, data: dict) -> "ChainHead":
        return cls(data["chainId"], int(data["treeSize"]), bytes.fromhex(data["rootHash"]),
                   bytes.fromhex(data["headHash"]), int(data["previousSize"]),
                   tuple(bytes.fromhex(p) for p in data["consistency"]))


def canonical(body: Mapping) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def digest(body: Mapping) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def build(*, service: str, seq: int, previous: str, signed_at: str, key, key_id: str,
          chains: Sequence[ChainHead]) -> bytes:
    """The checkpoint as published and stored: {"body": ..., "signature": base64}."""
    body = {"type": TYPE, "version": 1, "service": service, "seq": seq, "previous": previous,
            "signedAt": signed_at, "keyId": key_id, "chains": [c.as_json() for c in chains]}
    signature = sign(key, SIGNING_CONTEXT + canonical(body))
    return orjson.dumps({"body": body, "signature": base64.b64encode(signature).decode()})


@dataclass
class Checkpoint:
    body: dict
    signature: bytes
    raw: bytes

    @property
    def service(self) -> str:
        return self.body["service"]

    @property
    def seq(self) -> int:
        return self.body["seq"]

    @property
    def name(self) -> str:
        return f"{self.service}#{self.seq}"

    def chains(self) -> list[ChainHead]:
        return [ChainHead.from_json(c) for c in self.body["chains"]]

    def signed_by(self, keys: Mapping) -> str | None:
        """None when a trusted key signed it; otherwise what is wrong."""
        key = keys.get(self.body.get("keyId"))
        if key is None:
            return f"checkpoint {self.name} is signed by unknown key {self.body.get('keyId')!r}"
        if not signature_valid(key, self.signature, SIGNING_CONTEXT + canonical(self.body)):
            return f"checkpoint {self.name}: the signature does not verify (forged or altered)"
        return None


def parse(raw: bytes) -> Checkpoint:
    """ValueError when the message is not a well-formed checkpoint: anyone who can produce to the
    topic can put anything there, and that must be a finding, not a crash."""
    try:
        data = orjson.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("signature"), str):
            raise ValueError("expected {body, signature}")
        body, signature = data.get("body"), base64.b64decode(data["signature"], validate=True)
        _check_body(body)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"not a readable checkpoint: {exc}") from None
    return Checkpoint(body, signature, raw)


HEX64 = re.compile(r"[0-9a-f]{64}")


def _count(value, name: str, least: int = 0) -> int:
    if type(value) is not int or value < least:  # bool is an int too: refused
        raise ValueError(f"{name} must be an integer of at least {least}")
    return value


def _check_body(body) -> None:
    if not isinstance(body, dict) or body.get("type") != TYPE or body.get("version") != 1:
        raise ValueError(f"not a {TYPE} version 1")
    for name in ("service", "previous", "signedAt", "keyId"):
        if not isinstance(body.get(name), str):
            raise ValueError(f"{name} must be a string")
    _count(body.get("seq"), "seq", 1)
    if not isinstance(body.get("chains"), list):
        raise ValueError("chains must be a list")
    for chain in body["chains"]:
        if not isinstance(chain, dict) or not isinstance(chain.get("chainId"), str) \
                or not chain["chainId"].startswith(f"{body['service']}/"):
            raise ValueError("each chain must name a chain of the checkpoint's service")
        size = _count(chain.get("treeSize"), "treeSize", 1)
        if _count(chain.get("previousSize"), "previousSize") > size:
            raise ValueError("previousSize must not exceed treeSize")
        proof = chain.get("consistency")
        if not isinstance(proof, list) or not all(
                isinstance(h, str) and HEX64.fullmatch(h) for h in [chain.get("rootHash"), chain.get("headHash"), *proof]):
            raise ValueError("hashes must be 64 lowercase hex digits")


@dataclass
class SignedHistory:
    """What a service's checkpoints attest, once checked: per chain, (checkpoint, head) in order."""

    problems: list[str] = field(default_factory=list)
    last_seq: int = 0
    digests: dict[int, str] = field(default_factory=dict)
    heads: dict[str, list[tuple[str, ChainHead]]] = field(default_factory=dict)


def check_sequence(checkpoints: Iterable[Checkpoint], keys: Mapping) -> SignedHistory:
    """Checks one service's checkpoints in the order the topic holds them: trusted signatures,
    numbers 1, 2, 3 ... each naming its predecessor's digest, and each chain's tree only ever
    extending (a consistency proof from the size signed before). Exact repeats (a checkpoint
    published twice after a retry) are allowed; anything else is a finding."""
    history = SignedHistory()
    previous = ""
    for cp in checkpoints:
        problem = cp.signed_by(keys)
        if problem:
            history.problems.append(problem)
            continue
        seen = history.digests.get(cp.seq)
        if seen is not None:
            if seen != digest(cp.body):
                history.problems.append(f"fork: two different checkpoints {cp.name}")
            continue
        if cp.seq != history.last_seq + 1:
            history.problems.append(f"checkpoint {cp.name} follows {cp.service}#{history.last_seq}:"
                                    f" checkpoints {history.last_seq + 1}..{cp.seq - 1} are missing or out of order")
        if cp.body["previous"] != previous:
            history.problems.append(f"checkpoint {cp.name} does not name its predecessor's digest (reordered or forged)")
        history.digests[cp.seq] = previous = digest(cp.body)
        history.last_seq = max(history.last_seq, cp.seq)
        for head in cp.chains():
            _extend(history, cp, head)
    return history


def _extend(history: SignedHistory, cp: Checkpoint, head: ChainHead) -> None:
    signed = history.heads.setdefault(head.chain_id, [])
    before = signed[-1][1] if signed else None
    old_size, old_root = (before.tree_size, before.root) if before else (0, merkle.EMPTY_ROOT)
    if head.previous_size != old_size or not merkle.verify_consistency(
            old_size, head.tree_size, old_root, head.root, head.consistency):
        history.problems.append(f"fork: chain {head.chain_id} in checkpoint {cp.name} (size {head.tree_size})"
                                f" does not extend the tree of size {old_size} signed before")
    signed.append((cp.name, head))

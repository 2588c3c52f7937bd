"""Inclusion proofs: one decision, its Merkle path to a signed checkpoint, and the key's id.

`make_proof` reads the store; `check_proof` needs nothing but the proof and the signer's public
key, so an auditor, or a customer disputing one charge, can check it offline: the decision's
bytes hash to the leaf, the leaf and its path to the root, and the root is signed.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping

import asyncpg
import orjson

from ..eventstore.chain import ENTRY_FIELDS, chain_entry
from ..eventstore.store import SELECT_COLUMNS, _stored, chain_pages
from . import checkpoints, merkle

FORMAT = "wuguan-inclusion-proof/1"
HEX32 = re.compile(r"[0-9a-f]{64}")


class ProofUnavailable(Exception):
    """No proof can be made (unknown decision, not yet covered by a checkpoint, store changed)."""


async def make_proof(conn: asyncpg.Connection, decision_id: str) -> dict:
    try:
        wanted = uuid.UUID(decision_id)
    except ValueError:
        raise ProofUnavailable(f"{decision_id!r} is not a decision id (a UUID)") from None
    row = await conn.fetchrow(f"SELECT {SELECT_COLUMNS} FROM events WHERE event_id = $1", wanted)
    if row is None:
        raise ProofUnavailable(f"no decision {decision_id} in the store")
    event = _stored(row)
    if event.chain_id is None:
        raise ProofUnavailable(f"decision {decision_id} was stored before per-partition chains (migration 0005)"
                               " and is covered by the hash-chain walk only")
    checkpoint, head = await _covering_checkpoint(conn, event.service, event.chain_id, event.chain_seq)
    leaves = []
    async for rows in chain_pages(conn, event.chain_id, 0, head.tree_size, "hash"):
        leaves += [merkle.leaf_hash(bytes(r["hash"])) for r in rows]
    tree = merkle.Tree(leaves)
    if tree.size != head.tree_size or tree.root() != head.root:
        raise ProofUnavailable(f"chain {event.chain_id} no longer matches checkpoint {checkpoint.name}:"
                               " run `wuguan verify --checkpoints`")
    return {
        "format": FORMAT,
        "decisionId": decision_id,
        "chainId": event.chain_id,
        "leafIndex": event.chain_seq - 1,
        "treeSize": head.tree_size,
        "prevHash": bytes(event.prev_hash).hex(),
        "entry": chain_entry(event.global_position, event.stream_version, event).decode(),
        "inclusionPath": [p.hex() for p in tree.inclusion_proof(event.chain_seq - 1)],
        "keyId": checkpoint.body["keyId"],
        "checkpoint": orjson.loads(checkpoint.raw),
    }


async def _covering_checkpoint(conn: asyncpg.Connection, service: str, chain_id: str,
                               chain_seq: int) -> tuple[checkpoints.Checkpoint, checkpoints.ChainHead]:
    """The newest published checkpoint naming the chain, if its tree holds the event."""
    async for checkpoint in _published_newest_first(conn, service):
        head = next((h for h in checkpoint.chains() if h.chain_id == chain_id), None)
        if head is None:
            continue  # the chain did not grow then: an older checkpoint names it
        if head.tree_size >= chain_seq:
            return checkpoint, head
        break
    raise ProofUnavailable(f"no published checkpoint covers {chain_id} position {chain_seq} yet;"
                           " one is signed every WUGUAN_CHECKPOINT_EVERY_S seconds")


async def _published_newest_first(conn: asyncpg.Connection, service: str):
    before = None
    while True:  # a page at a time: the newest checkpoint naming a chain is usually among the first
        rows = await conn.fetch("SELECT seq, message FROM audit_checkpoints WHERE service = $1 AND published"
                                " AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT 100", service, before)
        for row in rows:
            yield checkpoints.parse(bytes(row["message"]))
        if not rows:
            return
        before = rows[-1]["seq"]


def check_proof(proof: Mapping, keys: Mapping) -> list[str]:
    """What is wrong with the proof; empty when the decision is in a tree a trusted key signed."""
    try:
        if proof.get("format") != FORMAT:
            return [f"not a {FORMAT} proof"]
        checkpoint = checkpoints.parse(orjson.dumps(proof["checkpoint"]))
        problem = checkpoint.signed_by(keys)
        if problem:
            return [problem]
        heads = [h for h in checkpoint.chains() if h.chain_id == proof["chainId"] and h.tree_size == proof["treeSize"]]
        if not heads:
            return [f"checkpoint {checkpoint.name} signs no tree of {proof['treeSize']} events for {proof['chainId']}"]
        if proof.get("keyId") != checkpoint.body["keyId"]:
            return [f"the proof names key {proof.get('keyId')!r}, its checkpoint was signed by {checkpoint.body['keyId']!r}"]
        if not isinstance(proof["prevHash"], str) or not HEX32.fullmatch(proof["prevHash"]):
            return ["prevHash must be 32 bytes in lowercase hex"]
        entry = proof["entry"].encode()
        link = hashlib.sha256(bytes.fromhex(proof["prevHash"]) + entry).digest()
        path = [bytes.fromhex(p) for p in proof["inclusionPath"]]
        if not merkle.verify_inclusion(merkle.leaf_hash(link), proof["leafIndex"], proof["treeSize"], path,
                                       heads[0].root):
            return ["the decision is not in the signed tree: its bytes, its position or its path were altered"]
        if str(decision_fields(proof).get("eventId")) != proof.get("decisionId"):
            return ["the proof's decisionId is not the decision it proves"]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"malformed proof: {type(exc).__name__}: {exc}"]
    return []


def decision_fields(proof: Mapping) -> dict:
    """The proven decision, field by field, as its entry holds it."""
    return dict(zip(ENTRY_FIELDS, orjson.loads(proof["entry"])))

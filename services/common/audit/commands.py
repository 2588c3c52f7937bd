"""`wuguan keys generate`, `verify --checkpoints`, `prove` and `check-proof` (issue 14)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from ..config import Settings
from ..errors import ConfigError
from .signing import KEY_SETTING, PUBLIC_KEYS_SETTING, generate, key_id, load_public_keys, public_line


def add_parsers(sub) -> None:
    keys = sub.add_parser("keys", help="make the Ed25519 key that signs checkpoints")
    keys.add_argument("action", choices=("generate",))
    keys.add_argument("--out", type=Path, help=f"private key file to write (default: ${KEY_SETTING})")
    prove = sub.add_parser("prove", help="write a self-contained inclusion proof of one decision")
    prove.add_argument("decision_id", metavar="DECISION_ID")
    prove.add_argument("--out", type=Path, help="file to write (default: standard output)")
    check = sub.add_parser("check-proof", help="check a proof offline: no database, no broker")
    check.add_argument("file", type=Path)
    add_public_key_option(check)


def add_public_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--public-key", action="append", type=Path, default=[], metavar="FILE",
                        help=f"a trusted signer's public key (repeatable; default ${PUBLIC_KEYS_SETTING},"
                             f" else the public half of ${KEY_SETTING})")


def trusted_keys(files: list[Path]) -> dict:
    """The keys a witness trusts: named on the command line, in the environment, or our own."""
    if files:
        return load_public_keys(files, "--public-key")
    settings = Settings.from_env()
    if settings.checkpoint_public_keys:
        return load_public_keys(settings.checkpoint_public_keys)
    own = settings.checkpoint_key
    if own is None:
        raise ConfigError("--public-key", f"name the signer's public key (or set {PUBLIC_KEYS_SETTING})")
    return load_public_keys([own], KEY_SETTING)


def keys_generate(args) -> int:
    path = args.out or Settings.from_env().checkpoint_key
    if path is None:
        raise ConfigError("--out", f"name the private key file to write (or set {KEY_SETTING})")
    if path.exists():
        raise ConfigError("--out", f"{str(path)!r} exists; a signing key is never overwritten")
    public = generate(path)
    print(f"private key: {path} (mode 0600; keep it off the database host's backups)")
    print(f"public key:  {path}.pub")
    print(f"key id:      {key_id(public)}")
    print(f"             {public_line(public)}")
    return 0


async def verify_checkpoints(args, conn) -> int:
    from ..topic_reader import read_to_end
    from .witness import verify_against

    keys = trusted_keys(args.public_key)
    settings = Settings.from_env()
    topic = args.topic or settings.checkpoint_topic
    report = await verify_against(conn, await read_to_end(settings.kafka_bootstrap_servers, topic), keys)
    for problem in report.problems:
        print(f"TAMPERED: {problem}")
    print(f"{'OK' if report.ok else 'FAILED'}: {report.checkpoints} signed checkpoints from {topic},"
          f" {report.events} events on {report.chains} chains checked against them;"
          f" {report.unsigned} newer events not yet covered by a checkpoint")
    return 0 if report.ok else 1


async def prove(args) -> int:
    from ..db import connect
    from .proofs import ProofUnavailable, make_proof

    conn = await connect(Settings.from_env().database_url)
    try:
        proof = await make_proof(conn, args.decision_id)
    except ProofUnavailable as exc:
        print(f"no proof: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    text = orjson.dumps(proof, option=orjson.OPT_INDENT_2).decode() + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"proof of {args.decision_id} written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def check_proof_file(args) -> int:
    from .proofs import check_proof, decision_fields

    try:
        proof = orjson.loads(args.file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"cannot read proof {args.file}: {exc}", file=sys.stderr)
        return 2
    keys = trusted_keys(args.public_key)
    failed = 0
    # One proof, or the bundle `explain-charge --proof` writes (a story and the proofs it rests on).
    proofs = proof.get("proofs", [proof]) if isinstance(proof, dict) else [proof]
    if not proofs or not all(isinstance(p, dict) for p in proofs):
        print("INVALID: the file holds no proof")
        return 1
    if "story" in proof:
        print("note: the story's text is not signed; each VALID decision below is, and the story's figures"
              " must be read from those decisions")
    for one in proofs:
        problems = check_proof(one, keys)
        for problem in problems:
            print(f"INVALID: {problem}")
        failed += bool(problems)
        if not problems:
            fields, checkpoint = decision_fields(one), one["checkpoint"]["body"]
            print(f"VALID: decision {fields['eventId']} ({fields['eventType']}, {fields['businessTime']}) is event"
                  f" {one['leafIndex'] + 1} of {one['treeSize']} in chain {one['chainId']}, signed in checkpoint"
                  f" {checkpoint['service']}#{checkpoint['seq']} at {checkpoint['signedAt']} by key {one['keyId']}")
    return 1 if failed else 0


async def write_story_proofs(story: dict, path: Path) -> int:
    """`explain-charge --proof FILE`: the story of one charge with a proof of each decision it
    rests on, in one file that `wuguan check-proof FILE` checks offline."""
    from ..db import connect
    from .proofs import ProofUnavailable, make_proof

    ids = list(dict.fromkeys(_decision_ids(story)))
    conn = await connect(Settings.from_env().database_url)
    try:
        proofs = [await make_proof(conn, decision_id) for decision_id in ids]
    except ProofUnavailable as exc:
        print(f"no proof: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    path.write_bytes(orjson.dumps({"story": story, "proofs": proofs}, option=orjson.OPT_INDENT_2))
    print(f"proofs of {len(proofs)} decision(s) written to {path}; check them with `wuguan check-proof {path}`")
    return 0


def _decision_ids(node):
    """Every decision a story cites, wherever it cites one."""
    if isinstance(node, dict):
        if isinstance(node.get("decisionId"), str):
            yield node["decisionId"]
        for value in node.values():
            yield from _decision_ids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _decision_ids(value)


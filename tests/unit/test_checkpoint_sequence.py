"""A service's signed checkpoints as a witness reads them (issue 14): trusted signatures, numbers
in order, each naming its predecessor, each chain's tree only extending. Pure: no broker."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common.audit import checkpoints, merkle
from services.common.audit.signing import generate, key_id, load_private, load_public_keys, public_line
from services.common.errors import ConfigError

KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}
LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(20)]


def head(chain: str, old: int, new: int) -> checkpoints.ChainHead:
    tree = merkle.Tree(LEAVES[:new])
    return checkpoints.ChainHead(chain, new, tree.root(), bytes(32), old, tuple(tree.consistency_proof(old)))


def signed(sizes: list[tuple[int, int]], key=KEY) -> list[checkpoints.Checkpoint]:
    made, previous = [], ""
    for seq, (old, new) in enumerate(sizes, start=1):
        raw = checkpoints.build(service="cards", seq=seq, previous=previous, signed_at="2026-12-06T08:00:00+08:00",
                                key=key, key_id=key_id(key.public_key()), chains=[head("cards/t/0", old, new)])
        made.append(checkpoints.parse(raw))
        previous = checkpoints.digest(made[-1].body)
    return made


def test_a_clean_sequence_and_a_repeat_pass():
    cps = signed([(0, 5), (5, 9), (9, 20)])
    history = checkpoints.check_sequence(cps + [cps[-1]], KEYS)
    assert history.problems == [] and history.last_seq == 3
    assert [h.tree_size for _, h in history.heads["cards/t/0"]] == [5, 9, 20]


def test_a_tree_that_does_not_extend_the_last_is_a_fork():
    cps = signed([(0, 5), (5, 9)])
    other = merkle.Tree(LEAVES[1:13])  # twelve leaves whose first nine are not the nine signed before
    forged = checkpoints.build(service="cards", seq=3, previous=checkpoints.digest(cps[1].body), signed_at="x",
                               key=KEY, key_id=key_id(KEY.public_key()),
                               chains=[checkpoints.ChainHead("cards/t/0", 12, other.root(), bytes(32), 9,
                                                             tuple(other.consistency_proof(9)))])
    problems = checkpoints.check_sequence(cps + [checkpoints.parse(forged)], KEYS).problems
    assert problems == ["fork: chain cards/t/0 in checkpoint cards#3 (size 12) does not extend the tree of size 9"
                        " signed before"]


def test_an_altered_body_no_longer_verifies():
    cp = signed([(0, 5)])[0]
    cp.body["chains"][0]["treeSize"] = 4
    assert checkpoints.check_sequence([cp], KEYS).problems == [
        "checkpoint cards#1: the signature does not verify (forged or altered)"]


def test_a_missing_checkpoint_in_the_middle_is_named():
    cps = signed([(0, 5), (5, 9), (9, 20)])
    problems = checkpoints.check_sequence([cps[0], cps[2]], KEYS).problems
    assert "checkpoint cards#3 follows cards#1: checkpoints 2..2 are missing or out of order" in problems


def test_unreadable_messages_are_refused():
    with pytest.raises(ValueError):
        checkpoints.parse(b'{"body": {"type": "other"}, "signature": ""}')


def test_key_files_are_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=f"WUGUAN_CHECKPOINT_KEY: cannot read the checkpoint signing key '{tmp_path}/none.pem'"):
        load_private(tmp_path / "none.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="is not an unencrypted PEM private key"):
        load_private(tmp_path / "junk.pem")
    public = generate(tmp_path / "k.pem")
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pem.pub").read_text().strip() == public_line(public)
    assert list(load_public_keys([tmp_path / "k.pem.pub"])) == [key_id(public)]
    with pytest.raises(FileExistsError):
        generate(tmp_path / "k.pem")


def test_same_number_other_content_is_a_fork_and_a_wrong_predecessor_is_named():
    cps = signed([(0, 5), (5, 9)])
    rival = signed([(0, 6)])[0]
    problems = checkpoints.check_sequence(cps + [rival], KEYS).problems
    assert problems == ["fork: two different checkpoints cards#1"]
    orphan = checkpoints.parse(checkpoints.build(service="cards", seq=2, previous="f" * 64, signed_at="x", key=KEY,
                                                 key_id=key_id(KEY.public_key()), chains=[head("cards/t/0", 5, 9)]))
    assert checkpoints.check_sequence([cps[0], orphan], KEYS).problems == [
        "checkpoint cards#2 does not name its predecessor's digest (reordered or forged)"]


@pytest.mark.parametrize("raw", [
    b'{"body": [], "signature": ""}', b'[]', b'{"body": {"type": "wuguan.AuditCheckpoint"}, "signature": ""}',
    b'{"body": {"type": "wuguan.AuditCheckpoint", "version": 1, "service": "cards", "seq": true, "previous": "",'
    b' "signedAt": "", "keyId": "k", "chains": []}, "signature": ""}',
    b'{"body": {"type": "wuguan.AuditCheckpoint", "version": 1, "service": "cards", "seq": 1, "previous": "",'
    b' "signedAt": "", "keyId": ["k"], "chains": []}, "signature": ""}',
    b'{"body": {"type": "wuguan.AuditCheckpoint", "version": 1, "service": "cards", "seq": 1, "previous": "",'
    b' "signedAt": "", "keyId": "k", "chains": [{"chainId": "dunning/t/0"}]}, "signature": ""}',
])
def test_hostile_records_are_refused_not_crashed_on(raw):
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        checkpoints.parse(raw)


def test_built_checkpoints_fit_the_published_message_schema():
    import jsonschema
    import orjson

    jsonschema.Draft202012Validator.check_schema(checkpoints.MESSAGE_SCHEMA)
    for cp in signed([(0, 5), (5, 9)]):
        jsonschema.validate(orjson.loads(cp.raw), checkpoints.MESSAGE_SCHEMA)


"""RFC 9162 Merkle trees against the Certificate Transparency reference vectors (the leaves and
tree heads of RFC 6962's test data, as published by transparency-dev/merkle), then every proof of
every small tree, and proofs built from a frontier as a checkpointer builds them (issue 14)."""
from __future__ import annotations

import hashlib

import pytest

from services.common.audit.merkle import (
    EMPTY_ROOT, Frontier, Tree, leaf_hash, root, verify_consistency, verify_inclusion,
)

ENTRIES = [bytes.fromhex(h) for h in
           ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
LEAVES = [leaf_hash(e) for e in ENTRIES]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {  # (leaf index, tree size): audit path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}
CONSISTENCY = {  # (old size, new size): proof
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}
MANY = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(70)]


def test_roots_are_the_published_tree_heads():
    assert EMPTY_ROOT.hex() == ROOTS[0]
    for n in range(9):
        assert root(LEAVES[:n]).hex() == ROOTS[n]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_are_the_published_ones(index, size):
    proof = Tree(LEAVES[:size]).inclusion_proof(index)
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    assert verify_inclusion(LEAVES[index], index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_are_the_published_ones(old, new):
    proof = Tree(LEAVES[:new]).consistency_proof(old)
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_every_inclusion_proof_verifies_and_no_wrong_one_does():
    for n in range(1, len(MANY) + 1):
        tree, expected = Tree(MANY[:n]), root(MANY[:n])
        for i in range(n):
            proof = tree.inclusion_proof(i)
            assert verify_inclusion(MANY[i], i, n, proof, expected)
            assert not verify_inclusion(MANY[(i + 1) % n], i, n, proof, expected) or n == 1
            if proof:
                assert not verify_inclusion(MANY[i], i, n, proof[:-1], expected)
                assert not verify_inclusion(MANY[i], i, n, [bytes(32)] + proof[1:], expected)


def test_every_consistency_proof_verifies_also_from_a_frontier():
    for n in range(len(MANY) + 1):
        new_root = root(MANY[:n])
        for m in range(n + 1):
            proof = Tree(MANY[:n]).consistency_proof(m)
            assert verify_consistency(m, n, root(MANY[:m]), new_root, proof)
            # what a checkpointer has: the old tree's frontier and the leaves since
            grown = Tree(MANY[m:n], known=m, frontier=Tree(MANY[:m]).frontier())
            assert grown.root() == new_root and grown.consistency_proof(m) == proof
            if 0 < m < n:
                assert not verify_consistency(m, n, root(MANY[:m]), root(MANY[1:n + 1]), proof)


def test_a_frontier_grows_to_the_same_root():
    frontier = Frontier()
    for n, leaf in enumerate(MANY, start=1):
        frontier.append(leaf)
        assert frontier.root() == root(MANY[:n]) and frontier.nodes == Tree(MANY[:n]).frontier()
    assert Frontier(frontier.size, frontier.nodes).root() == root(MANY)


def test_a_tree_refuses_what_it_cannot_know():
    with pytest.raises(ValueError):
        Tree([], known=3, frontier=[bytes(32)])
    with pytest.raises(ValueError):
        Tree(MANY[5:9], known=5, frontier=Tree(MANY[:5]).frontier()).inclusion_proof(2)

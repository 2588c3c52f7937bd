"""Merkle trees as RFC 9162 (Certificate Transparency v2) defines them, section 2.1.

A leaf's hash is SHA-256(0x00 || entry), an interior node's SHA-256(0x01 || left || right), and
a tree of n leaves splits at the largest power of two below n. Inclusion proofs are O(log n), and
a consistency proof shows that the tree of m leaves is a prefix of the tree of n.

Any tree is described here by the leaf hashes it has beyond a known prefix plus that prefix's
*frontier*: the roots of the perfect subtrees the prefix decomposes into (one per bit of its size).
A checkpointer keeps only the frontier of its last checkpoint and reads the leaves added since;
a proof over a whole chain is the same with an empty prefix.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def frontier_ranges(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees [start, end) a tree of `size` leaves decomposes into, largest first."""
    ranges, start = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            ranges.append((start, start + (1 << bit)))
            start += 1 << bit
    return ranges


class Tree:
    """A tree of `known + len(leaves)` leaves: the first `known` given by their frontier only."""

    def __init__(self, leaves: Sequence[bytes] = (), known: int = 0, frontier: Sequence[bytes] = ()):
        ranges = frontier_ranges(known)
        if len(frontier) != len(ranges):
            raise ValueError(f"a prefix of {known} leaves has {len(ranges)} frontier nodes, got {len(frontier)}")
        self.known = known
        self.leaves = list(leaves)
        self.size = known + len(self.leaves)
        self._nodes = dict(zip(ranges, frontier))

    def hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end): from the frontier where the range lies in the prefix."""
        if (start, end) in self._nodes:
            return self._nodes[(start, end)]
        if end - start == 1 and start >= self.known:
            return self.leaves[start - self.known]
        if end - start < 2:
            raise ValueError(f"leaves [{start}, {end}) are not known to this tree")
        k = _split(end - start)
        node = self._nodes[(start, end)] = node_hash(self.hash(start, start + k), self.hash(start + k, end))
        return node  # kept: proofs ask for the same subtrees again

    def root(self) -> bytes:
        return self.hash(0, self.size) if self.size else EMPTY_ROOT

    def frontier(self) -> list[bytes]:
        return [self.hash(s, e) for s, e in frontier_ranges(self.size)]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 9162 2.1.3.1: the audit path of leaf `index` (which must be a new leaf)."""
        if not self.known <= index < self.size:
            raise ValueError(f"leaf {index} is not among the leaves [{self.known}, {self.size}) of this tree")
        proof, start, end = [], 0, self.size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self.hash(start + k, end))
                end = start + k
            else:
                proof.append(self.hash(start, start + k))
                start += k
        return proof[::-1]

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 9162 2.1.4.1: proof that the tree of `old_size` leaves is a prefix of this one.
        Needs only the frontier of `old_size` (old_size == known) and the leaves after it."""
        if not 0 <= old_size <= self.size:
            raise ValueError(f"no consistency proof from {old_size} to {self.size} leaves")
        if old_size in (0, self.size):
            return []
        proof: list[bytes] = []
        start, end, whole = 0, self.size, True
        m = old_size
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self.hash(start + k, end))
                end = start + k
            else:
                proof.append(self.hash(start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            proof.append(self.hash(start, end))
        return proof[::-1]


def root(leaves: Sequence[bytes]) -> bytes:
    return Tree(leaves).root()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, node = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(p, node)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = node_hash(node, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and node == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2."""
    if not 0 <= old_size <= new_size or any(len(p) != 32 for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """A growing tree kept as its frontier only: O(log n) memory, O(1) amortised per leaf. What a
    checkpointer stores between checkpoints, and what verify streams a whole chain through."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()):
        if len(nodes) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} frontier nodes, got {len(nodes)}")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> None:
        node, size = leaf, self.size
        while size & 1:  # each trailing one bit is a perfect subtree the new leaf completes
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        node = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            node = node_hash(left, node)
        return node

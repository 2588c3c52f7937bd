"""Which of its service's chains a worker owns, and the epoch that proves it (store.claim_chains).

Each (topic, partition) of a service's inputs has a chain of its own in the log, written only by
the partition's owner. When a worker starts deciding a partition in a new consumer-group
generation, its first batch claims the chain (the epoch moves on, in that batch's transaction);
every later append must match that epoch. A former owner still holding a batch after a
rebalance finds the epoch moved and is fenced out (store.FencedOut) instead of appending.
Kafka's own generation is not the token: it restarts when a group is deleted, while the epoch
only grows.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..eventstore import store
from .dead_letters import InputMessage


class ChainOwnership:
    def __init__(self, service: str):
        self.service = service
        self._epochs: dict[str, int] = {}  # chain -> epoch claimed, once that claim committed
        self._claimed_in: dict[str, int] = {}  # chain -> consumer-group generation of the claim
        self._names: dict[tuple[str, int], str] = {}  # (topic, partition) -> its chain, asked for per input

    def chain_of(self, message: InputMessage) -> str:
        key = (message.topic, message.partition)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = store.chain_name(self.service, message.topic, message.partition)
        return name

    async def epochs(self, conn, chains: Iterable[str], generation: int,
                     claimed: dict[str, tuple[int, int]]) -> dict[str, int]:
        """The epoch of each chain, claiming in this transaction those not yet claimed in
        `generation`; the new claims go into `claimed`, to be confirmed after commit."""
        chains = sorted(chains)
        stale = [c for c in chains if self._claimed_in.get(c) != generation]
        if stale:
            claimed.update({c: (generation, epoch) for c, epoch in (await store.claim_chains(conn, stale)).items()})
        return {c: claimed[c][1] if c in claimed else self._epochs[c] for c in chains}

    def confirm(self, claimed: dict[str, tuple[int, int]]) -> None:
        for chain, (generation, epoch) in claimed.items():
            self._claimed_in[chain], self._epochs[chain] = generation, epoch

    def forget(self, chains: Iterable[str]) -> None:
        """Fenced out of these: another worker owns them now."""
        for chain in chains:
            self._claimed_in.pop(chain, None)
            self._epochs.pop(chain, None)

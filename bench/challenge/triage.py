"""Which commitments the auditor checks, in what order, and how much work one node key may make it do.

A trusted node key can sign as many commitments as it likes, under any name, each listing MAX_DEVICES devices of junk
products whose Merkle roots match: every one used to get a full product check per device (seconds each at n = 1024,
minutes at 8192). Junk must cost the sender, not the verifier, and must never decide the verdict on honest answers:

- cheap refusals first (signature, key in the trust list, name in the challenge's node list and bound to that key,
  sizes and counts against the challenge: bench.challenge.auditor.verify's candidate pass, which reads no product);
- commitments under names the trust list binds to their signer, then names the challenge lists, then the rest, each
  group by arrival: a node's own answer is judged before anything another name could send (`order`);
- one random product of one device (the verifier's secret choice) is the first heavy check of each commitment
  (`spot_pick`): a wrong one refuses the whole commitment, so junk costs one product check;
- a per-key budget (`KeyBudget`): once JUNK_PER_KEY commitments of a key have failed a product check, that key's
  further commitments under names not bound to it are refused unread. What one key can make the verifier do is then
  its own nodes' honest work plus JUNK_PER_KEY commitments' worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Commitments of one key that may fail a product check before its further ones (under names not bound to it in the
#: trust list) are refused unread. Two, not one: an honest node with one defective device fails its commitment's spot
#: check now and then, and a second honest node of the same key should still be heard.
JUNK_PER_KEY = 2


def name_key_problem(node: str, signer: str | None, names: dict[str, str] | None, where: str) -> str | None:
    """Why a commitment under `node` signed by `signer` is refused by the trust list's name bindings, or None: a name
    bound to another key belongs to that key alone (a squatter's commitment must not void the real node's answer)."""
    if not names or node not in names or names[node] == signer:
        return None
    return (f"{where}: node {node!r} is bound to key {names[node]} in the trust list; this commitment is signed by "
            f"{signer}: refused")  # fmt: skip


def expected(node: str, signer: str | None, names: dict[str, str] | None) -> bool:
    """Whether a commitment counts toward `collect --expect`: a name the trust list binds to its signer, or any name
    of a key the trust list binds no name to (a list in the older format). A key with names of its own cannot end
    the fleet's collection early with commitments under made-up names (verify still judges them, last)."""
    return not names or names.get(node) == signer or signer not in names.values()


def rank(node: str, signer: str | None, names: dict[str, str] | None, challenged: Sequence[str] | None) -> int:
    """0 for a name the trust list binds to its signer, 1 for a name the challenge lists, 2 for any other."""
    if names and names.get(node) == signer:
        return 0
    return 1 if challenged is not None and node in challenged else 2


def order(candidates: list[Any], key: Any) -> list[Any]:
    """`candidates` sorted by (rank, arrival, file name), `key` giving that tuple for one: bound names first."""
    return sorted(candidates, key=key)


def spot_pick(per_device: dict[str, list[dict[str, Any]]], rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    """One (device UUID, committed product) drawn uniformly by the verifier's secret generator: a commitment whose
    products are wrong in a share s is caught by it with probability s, before any other product is checked."""
    products = [(uuid, p) for uuid in sorted(per_device) for p in sorted(per_device[uuid], key=lambda p: p["index"])]
    return products[int(rng.integers(len(products)))]


@dataclass
class KeyBudget:
    """Per node key: how many of its commitments failed a product check (spot check or a later product)."""

    limit: int = JUNK_PER_KEY
    failed: dict[str | None, int] = field(default_factory=dict)

    def exhausted(self, signer: str | None, bound: bool) -> bool:
        """Whether this key's next commitment is refused unread: never under a name the trust list binds to it."""
        return not bound and self.failed.get(signer, 0) >= self.limit

    def charge(self, signer: str | None) -> None:
        self.failed[signer] = self.failed.get(signer, 0) + 1

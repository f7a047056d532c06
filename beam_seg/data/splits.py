"""Deterministic splits and shard keys: pure functions of an image name (no Beam, so worker pools import them fast).

Determinism by construction (as TensorFlow Datasets does it): every record is keyed by a salted stable hash of its
image name; the hash decides the val carve-out, the shard a record lands in and its position inside the shard.
"""

from __future__ import annotations

import hashlib
import math
import struct

__all__ = ["is_val", "num_shards_for", "shard_key", "stable_hash"]

_VAL_SALT = "beam_seg/val"
_SHARD_SALT = "beam_seg/shard"


def stable_hash(name: str, salt: str, seed: int = 0) -> int:
    """A 64-bit hash of ``name`` that is the same on every machine, process and Python version."""
    digest = hashlib.md5(f"{salt}:{seed}:{name}".encode(), usedforsecurity=False).digest()
    return struct.unpack(">Q", digest[:8])[0]


def is_val(name: str, val_fraction: float, seed: int = 0) -> bool:
    """Whether a trainval image belongs to the val carve-out (a stable ``val_fraction`` share)."""
    return stable_hash(name, _VAL_SALT, seed) < val_fraction * 2**64


def shard_key(name: str, seed: int = 0) -> int:
    """The key that decides a record's shard and its position inside the shard."""
    return stable_hash(name, _SHARD_SALT, seed)


def num_shards_for(total_bytes: int, target_shard_bytes: int, fixed: int = 0) -> int:
    """Shards for a split: ``fixed`` when given, else enough for ``target_shard_bytes`` each, at least 1."""
    if fixed:
        return fixed
    return max(1, math.ceil(total_bytes / target_shard_bytes))

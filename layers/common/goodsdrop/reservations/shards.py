"""A product's live stock shards in Redis: how many, which one a member starts at, their sum.

A product's live stock may be split over S shards (`products.stock_shards`, 1 unless a hot drop
asked for more), each a hash in its own Redis Cluster slot (`keys.stock(product, shard)`):
`available`, `reserved`, `version`. What readers see is the sum over the shards, read in one
pipelined round trip; its version is the sum of the shards' versions.
"""

from __future__ import annotations

import zlib

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.products import shard_count
from goodsdrop.scripts import script

MAX_SHARDS = 16


def home_shard(member_id: str | int, shards: int) -> int:
    """The shard a member's reservations try first (a stable hash of the member id)."""
    return zlib.crc32(str(member_id).encode()) % shards if shards > 1 else 0


def product_level(product_id: int, shards: int | None = None) -> tuple[int, int] | None:
    """A product's (available, version) summed over its shards in one round trip; None if any is missing."""
    shards = shards or shard_count(product_id)
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        pipe.hmget(keys.stock(product_id, shard), "available", "version")
    rows = pipe.execute()
    if any(available is None for available, _ in rows):
        return None
    return sum(int(a) for a, _ in rows), sum(int(v or 0) for _, v in rows)


def spread(total: int, shards: int) -> list[int]:
    """`total` units split as evenly as possible over `shards` (the first shards get the remainder)."""
    return [total // shards + (1 if shard < total % shards else 0) for shard in range(shards)]


def forget_shards(product_id: int, shards: int | None = None) -> None:
    """Drop a product's cached stock shards (one key per command: each shard is its own slot)."""
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards or shard_count(product_id)):
        pipe.delete(keys.stock(product_id, shard))
    pipe.execute()


def close_shards(product_id: int, shards: int, *, closed: bool) -> int:
    """Take the product off sale in every shard (no new hold: `lua/take_units.lua` answers CLOSED), or put
    it back on sale; the open holds left over all shards (they settle as usual).

    Callers hold the product's MySQL stock row lock, like every writer of its live stock, so a
    concurrent rebuild (which writes the marker from `products.listed`) cannot undo this.
    """
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        script("close_shard")(keys=[keys.stock_closed(product_id, shard), keys.stock_holds(product_id, shard)],
                              args=["1" if closed else "0"], client=pipe)
    return sum(int(holds) for holds in pipe.execute())

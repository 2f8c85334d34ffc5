"""How a hold ends: sold or released, shard by shard, exactly once; and units given back after a sale.

A hold ends exactly once per shard, by `settle` (`lua/settle_hold.lua` on every shard of the
product, one pipelined round trip): sold (`SettleTarget.SOLD`, "C") when the saga persisted the
sale, or released (`SettleTarget.RELEASED`, "X") back to the shard it came from. Per-shard
markers make every repeat a no-op. A cancelled or returned line's units go back by `restock`, to
the member's home shard. Either way the member's `held` count (goodsdrop.reservations.claim) is
given back exactly once per (order, product), guarded by `keys.member_held_returned`.

The saga runs these under the product's MySQL row lock, before its transaction commits; if the
transaction then fails, `unsettle` / `unrestock` forget the markers and the cached stock, so the
next read rebuilds from MySQL (goodsdrop.reservations.rebuild).
"""

from __future__ import annotations

from typing import Any

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.codes import HeldChange, SettleCode, SettleTarget
from goodsdrop.products import shard_count
from goodsdrop.reservation_types import Line, Settled
from goodsdrop.reservations.shards import home_shard, product_level
from goodsdrop.scripts import script

MARKER_TTL_SECONDS = 7 * 24 * 3600  # settled/restocked/held-returned markers outlive any retry


def settle_call(order_id: str, product_id: int, shard: int, target: SettleTarget, client: Any, *,
                undo_sale: bool = False) -> Any:
    """Queue (or run, `client=None`) `lua/settle_hold.lua` for the order's hold in one shard.

    A release undoes a sale made in Redis (its units come back) only with `undo_sale`: the caller
    holds the order's ledger row and found it OPEN, so the sale never committed in MySQL. Without
    it (the hot path, which cannot know) such a release is refused: giving back units MySQL sold
    would let Redis sell them twice.
    """
    return script("settle_hold")(keys=[keys.stock(product_id, shard), keys.stock_holds(product_id, shard),
                                       keys.stock_settled(product_id, order_id, shard)],
                                 args=[order_id, target, MARKER_TTL_SECONDS, "1" if undo_sale else "0"], client=client)


def _summed(product_id: int, codes: list[int], levels: list[tuple[int, int]]) -> Settled:
    """One line's outcome over its shards: refused wins, then applied, then not cached, else already."""
    if any(code == SettleCode.REFUSED for code in codes):
        code = SettleCode.REFUSED
    elif any(code == SettleCode.APPLIED for code in codes):
        code = SettleCode.APPLIED
    elif any(code == SettleCode.NOT_CACHED for code in codes):
        code = SettleCode.NOT_CACHED
    else:
        code = SettleCode.ALREADY
    known = all(available >= 0 for available, _ in levels)
    return Settled(product_id, code, sum(a for a, _ in levels) if known else -1,
                   sum(v for _, v in levels) if known else -1)


def return_held(member_id: str | int, order_id: str, lines: list[Line], change: HeldChange) -> None:
    """Give the lines' units back to the member's `held` counts once (or undo that): `lua/return_held.lua`."""
    args: list[Any] = [change, MARKER_TTL_SECONDS, len(lines)]
    for line in lines:
        args += [line.product_id, line.quantity]
    script("return_held")(keys=[keys.member_held(member_id), keys.member_held_returned(member_id, order_id)],
                          args=args)


def settle(order_id: str, member_id: str | int, line: Line, target: SettleTarget, *,
           undo_sale: bool = False) -> Settled:
    """End the order's holds on `line`'s product in every shard: sold ("C") or released ("X"); idempotent.

    A release also gives the units back to the member's `held` count, exactly once. It undoes a
    sale made in Redis only with `undo_sale` (see `settle_call`); otherwise such a release is
    REFUSED and nothing changes.
    """
    shards = shard_count(line.product_id)
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        settle_call(order_id, line.product_id, shard, target, pipe, undo_sale=undo_sale)
    answers = [[int(v) for v in raw] for raw in pipe.execute()]
    settled = _summed(line.product_id, [a[0] for a in answers], [(a[1], a[2]) for a in answers])
    if target == SettleTarget.RELEASED and settled.code != SettleCode.REFUSED:
        return_held(member_id, order_id, [line], HeldChange.RETURN)
    return settled


def release_order(order_id: str, member_id: str | int, lines: list[Line]) -> list[Settled]:
    """Release every line of an order (on every shard) and give its units back to `held` (the hot path).

    A line the saga already sold in Redis stays sold (REFUSED): the hot path cannot know whether
    that sale committed in MySQL, and the saga ends the order either way.
    """
    return [settle(order_id, member_id, line, SettleTarget.RELEASED) for line in lines]


def unsettle(order_id: str, lines: list[Line], member_id: str | int | None = None) -> None:
    """Undo settles whose MySQL transaction then failed: forget the markers and the cached stock.

    The next read rebuilds each product's shards from MySQL (where the transaction rolled back)
    and the holds, so Redis and MySQL agree again; `held` units given back are counted again. A
    rebuild already under way loses its token (`keys.stock_rebuild`): it may have read the markers
    forgotten here, so its write is refused and it starts again (goodsdrop.reservations.rebuild).
    """
    pipe = redis_client().pipeline(transaction=False)
    for line in lines:
        for shard in range(shard_count(line.product_id)):
            pipe.delete(keys.stock_settled(line.product_id, order_id, shard))
            pipe.delete(keys.stock(line.product_id, shard))
            pipe.delete(keys.stock_rebuild(line.product_id, shard))
    pipe.execute()
    if member_id is not None and lines:
        return_held(member_id, order_id, lines, HeldChange.UNDO)


def restock(order_id: str, member_id: str | int, line: Line) -> Settled:
    """Give a cancelled or returned line's units back to the live stock and to `held` (idempotent).

    The units go to the member's home shard (a fixed choice, so a repeat finds its marker).
    """
    shards = shard_count(line.product_id)
    shard = home_shard(member_id, shards)
    code, available, version = (int(v) for v in script("restock_units")(
        keys=[keys.stock(line.product_id, shard), keys.stock_restocked(line.product_id, order_id, shard)],
        args=[line.quantity, MARKER_TTL_SECONDS]))
    return_held(member_id, order_id, [line], HeldChange.RETURN)
    if code == SettleCode.APPLIED and shards > 1:
        level = product_level(line.product_id, shards)
        available, version = level if level is not None else (-1, -1)
    return Settled(line.product_id, code, available, version)


def unrestock(order_id: str, line: Line, member_id: str | int | None = None) -> None:
    """Undo a restock whose MySQL transaction failed (forget the marker, the cached stock, a rebuild under way)."""
    shards = shard_count(line.product_id)
    pipe = redis_client().pipeline(transaction=False)
    if member_id is not None:
        pipe.delete(keys.stock_restocked(line.product_id, order_id, home_shard(member_id, shards)))
    for shard in range(shards):
        if member_id is None:
            pipe.delete(keys.stock_restocked(line.product_id, order_id, shard))
        pipe.delete(keys.stock(line.product_id, shard))
        pipe.delete(keys.stock_rebuild(line.product_id, shard))
    pipe.execute()
    if member_id is not None:
        return_held(member_id, order_id, [line], HeldChange.UNDO)

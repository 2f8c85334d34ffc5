"""Taking an order's units from its products' shards, and evening the shards out.

Per line, one bounded pass over the product's shards (`lua/take_units.lua`): first the shard the
member hashes to (`home_shard`), then - if it had too few units - the others, taking what each
has until the line is complete. Each step records the order's hold in that shard and is
idempotent per order (a repeat reports the hold, takes nothing more). Sold out is reported only
when the shards together have too few units. If the buyer's home shard ran empty, units are moved
to it from the fullest shard (`refill_shard`: take-if-available, then add - never creates units),
so the next buyers hashed there succeed first try; the expiry job evens shards out (`rebalance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.codes import PassKind, SettleTarget, ShiftCode, TakeCode
from goodsdrop.reservation_types import Line, Reservation
from goodsdrop.reservations.settlement import settle_call
from goodsdrop.reservations.shards import home_shard
from goodsdrop.scripts import script


@dataclass
class _LinePass:
    """What one pass over a line's shards got: units per shard, and whether the line is complete."""

    taken: dict[int, int] = field(default_factory=dict)
    complete: bool = False
    load: bool = False  # a shard's stock is not in Redis: load the product and pass again
    ended: bool = False  # the order's hold already ended in a shard (released): nothing more is taken
    closed: bool = False  # the product is off sale (unlisted or deleted): no new hold anywhere
    available: int = 0  # units the shards had when the line could not be completed
    level: tuple[int, int] | None = None  # the product's (available, version) when known from the pass

    def stopped(self, code: int) -> bool:
        """Whether a take's first value says the pass must stop (stock not loaded, hold ended, closed); noted here."""
        self.load, self.ended = code == TakeCode.NOT_LOADED, code == TakeCode.HOLD_ENDED
        self.closed = code == TakeCode.CLOSED
        return self.load or self.ended or self.closed


def _take(order_id: str, member_id: str, product_id: int, shard: int, wanted: int) -> Any:
    return script("take_units")(keys=[keys.stock(product_id, shard), keys.stock_holds(product_id, shard),
                                      keys.stock_settled(product_id, order_id, shard),
                                      keys.stock_closed(product_id, shard)],
                                args=[order_id, member_id, wanted])


def _take_line(res: Reservation, line: Line, shards: int) -> _LinePass:
    """One bounded pass over the line's shards, starting at the member's home shard."""
    result = _LinePass()
    home = home_shard(res.member_id, shards)
    got, available, version = (int(v) for v in _take(res.order_id, res.member_id, line.product_id, home,
                                                     line.quantity))
    if result.stopped(got):
        return result
    result.taken[home] = got
    if got >= line.quantity:
        result.complete = True
        result.level = (available, version) if shards == 1 else None
        return result
    if shards == 1:
        result.available = available + got
        return result
    # The home shard had too few units: look at the others once, then take from those that have some.
    others = [(home + i) % shards for i in range(1, shards)]
    pipe = redis_client().pipeline(transaction=False)
    for shard in others:
        pipe.hget(keys.stock(line.product_id, shard), "available")
        pipe.hget(keys.stock_holds(line.product_id, shard), res.order_id)
    seen = pipe.execute()
    snapshot: dict[int, int] = {}
    for i, shard in enumerate(others):
        raw_available, hold = seen[2 * i], seen[2 * i + 1]
        if raw_available is None:
            result.load = True
            return result
        snapshot[shard] = int(raw_available) + (int(hold.rsplit(":", 1)[1]) if hold else 0)
    if got + sum(snapshot.values()) < line.quantity:
        result.available = available + got + sum(snapshot.values())
        return result
    need = line.quantity - got
    for shard in others:
        if need <= 0:
            break
        if snapshot[shard] <= 0:
            continue
        taken = int(_take(res.order_id, res.member_id, line.product_id, shard, need)[0])
        if result.stopped(taken):
            return result
        result.taken[shard] = taken
        need -= taken
    if need > 0:  # others bought the units in between: sold out for this pass
        result.available = line.quantity - need
        return result
    result.complete = True
    if available == 0:
        # The buyer's home shard is empty now: move units to it, so its next buyers succeed first try.
        refill_shard(line.product_id, home, dict(snapshot))
    return result


def _release(order_id: str, passes: list[tuple[Line, int, _LinePass]]) -> None:
    """Give back every unit the passes took, to the shard it came from (one round trip)."""
    pipe = redis_client().pipeline(transaction=False)
    queued = False
    for line, _, line_pass in passes:
        for shard, units in line_pass.taken.items():
            if units > 0:
                settle_call(order_id, line.product_id, shard, SettleTarget.RELEASED, pipe)
                queued = True
    if queued:
        pipe.execute()


def take_lines(res: Reservation) -> tuple[PassKind, Any]:
    """Take every line's units: (TAKEN, levels), (SHORT, outcome), (LOAD, product) or (ENDED, None).

    SHORT's outcome says OUT_OF_STOCK, or PRODUCT_UNAVAILABLE when a product was taken off sale.

    The levels are each line's product (available, version) when the pass learnt it (one-shard
    products), else None: `level_reads` reads the sum over the shards.

    Idempotent per order: a repeat after a crash or a load finds the holds already recorded.
    On SHORT every unit this pass took has been given back.
    """
    passes: list[tuple[Line, int, _LinePass]] = []
    for line, terms in zip(res.lines, res.terms, strict=True):
        line_pass = _take_line(res, line, terms.shards)
        passes.append((line, terms.shards, line_pass))
        if line_pass.load:
            return PassKind.LOAD, line.product_id
        if line_pass.ended:
            return PassKind.ENDED, None
        if line_pass.closed:
            _release(res.order_id, passes)
            return PassKind.SHORT, {"code": "PRODUCT_UNAVAILABLE", "productId": str(line.product_id)}
        if not line_pass.complete:
            _release(res.order_id, passes)
            return PassKind.SHORT, {"code": "OUT_OF_STOCK", "productId": str(line.product_id),
                                    "available": line_pass.available}
    return PassKind.TAKEN, [line_pass.level for _, _, line_pass in passes]


@dataclass(frozen=True)
class LevelReads:
    """Reads of the products' stock a pass did not learn (sharded lines): one HMGET per shard.

    Queued on a pipeline the caller sends anyway (the hot path: with the Idempotency-Key's DONE
    state), so a sharded product's StockChanged costs no extra round trip.
    """

    lines: list[tuple[int, int, int]]  # (line index, product id, shards)

    def queue(self, pipe: Any) -> int:
        """Queue the reads on `pipe`; how many results they add."""
        for _, product_id, shards in self.lines:
            for shard in range(shards):
                pipe.hmget(keys.stock(product_id, shard), "available", "version")
        return sum(shards for _, _, shards in self.lines)

    def fill(self, levels: list[tuple[int, int] | None], values: list[Any]) -> list[tuple[int, int]]:
        """`levels` with the summed (available, version) of each read line, from the queued reads' results."""
        filled = list(levels)
        results = iter(values)
        for index, _, shards in self.lines:
            rows = [next(results) for _ in range(shards)]
            filled[index] = (sum(int(a or 0) for a, _ in rows), sum(int(v or 0) for _, v in rows))
        return [level or (0, 0) for level in filled]


def level_reads(res: Reservation, levels: list[tuple[int, int] | None]) -> LevelReads:
    """The reads that complete `levels` (the lines whose product stock the pass did not learn)."""
    return LevelReads([(i, line.product_id, terms.shards)
                       for i, (line, terms, level) in enumerate(zip(res.lines, res.terms, levels, strict=True))
                       if level is None])


# ---------------------------------------------------------------------------- rebalancing


def refill_shard(product_id: int, empty: int, seen: dict[int, int]) -> int:
    """Move units from the fullest shard (as last `seen`) to the `empty` one; the units moved.

    Never creates units: an atomic take-if-available on the donor, then an increment on the
    recipient. If the recipient vanished in between (its stock is being rebuilt), the units go back
    to the donor; if both vanished, the rebuild recomputes every shard from MySQL anyway.
    """
    donor = max((s for s in seen if s != empty), key=lambda s: seen[s], default=None)
    if donor is None or seen[donor] < 2:
        return 0
    wanted = seen[donor] // 2
    shift = script("shift_available")
    status, moved, _, _ = (int(v) for v in shift(keys=[keys.stock(product_id, donor)], args=[-wanted]))
    if status != ShiftCode.SHIFTED or moved == 0:
        return 0
    status, _, _, _ = (int(v) for v in shift(keys=[keys.stock(product_id, empty)], args=[-moved]))
    if status != ShiftCode.SHIFTED:
        shift(keys=[keys.stock(product_id, donor)], args=[-moved])
        return 0
    return -moved


def rebalance(product_id: int, shards: int) -> int:
    """Even out a sharded product's available units over its shards (e.g. near a drop's end); units moved."""
    if shards <= 1:
        return 0
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        pipe.hget(keys.stock(product_id, shard), "available")
    raw = pipe.execute()
    if any(v is None for v in raw):
        return 0  # being rebuilt: the rebuild spreads the units itself
    seen = {shard: int(v) for shard, v in enumerate(raw)}
    moved = 0
    for shard in [s for s, units in seen.items() if units == 0]:
        units = refill_shard(product_id, shard, seen)
        if units:
            donor = max((s for s in seen if s != shard), key=lambda s: seen[s])
            seen[donor] -= units
            seen[shard] += units
            moved += units
    return moved

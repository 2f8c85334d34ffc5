"""The single-script reservation from before sharded stock, kept only to benchmark against.

`bench/legacy_reserve_order.lua` reserved every line in one script touching the member's keys,
each product's keys and the global expiry index at once: one atomic step and one round trip on a
single Redis, but CROSSSLOT on Redis Cluster. The product now claims on the member's slot and takes
units shard by shard (goodsdrop.reservations); `bench.core` and `bench.reserve_steps` time both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goodsdrop import keys
from goodsdrop.reservations import IDEMPOTENCY_TTL_SECONDS, Reservation, ReserveResult

SOURCE_PATH = Path(__file__).with_name("legacy_reserve_order.lua")


def source() -> str:
    """The legacy script's text."""
    return SOURCE_PATH.read_text()


def buyers_key(product_id: int | str) -> str:
    """The legacy per-product limit counter (memberId -> units), replaced by `keys.member_held`."""
    return f"{keys.PREFIX}:{{p{product_id}}}:buyers"


def script_call(res: Reservation) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of the legacy script for `res`, exactly as the product built them."""
    script_keys = [keys.order_idempotency(res.member_id, res.key_digest),
                   keys.order_record(res.member_id, res.order_id), keys.reservation_expiry(),
                   keys.member_pending_orders(res.member_id)]
    args: list[Any] = [res.fingerprint, res.now_ms, res.expires_ms, res.order_id, res.member_id, res.document(),
                       IDEMPOTENCY_TTL_SECONDS, res.record_ttl, len(res.lines)]
    for line, terms in zip(res.lines, res.terms, strict=True):
        script_keys += [keys.stock(line.product_id), buyers_key(line.product_id), keys.stock_holds(line.product_id)]
        args += [line.product_id, line.quantity,
                 -1 if terms.per_member_limit is None else terms.per_member_limit,
                 -1 if terms.sales_start_ms is None else terms.sales_start_ms]
    return script_keys, args


def parse(raw: list[Any]) -> ReserveResult | int:
    """The legacy script's answer (an int: the line whose stock must be loaded first)."""
    kind = raw[0]
    if kind == "LOAD":
        return int(raw[1])
    if kind == "RESERVED":
        values = [int(v) for v in raw[1:]]
        return ReserveResult("RESERVED", levels=list(zip(values[::2], values[1::2], strict=True)))
    if kind == "REFUSED":
        return ReserveResult("REFUSED", outcome=json.loads(raw[1]))
    if kind == "REPLAY":
        state, outcome, order = raw[1], raw[2], raw[3]
        return ReserveResult("REPLAY", outcome=json.loads(outcome) if outcome else None, state=state, order_id=order)
    return ReserveResult("REUSED")

"""Reservations in Redis: holds on live stock, from the claim to their end. The modules, bottom up:
`shards` (a product's stock shards), `settlement` (how a hold ends), `order_record` (the order in
Redis), `rebuild` (stock from MySQL and the holds), `takes` (units from the shards), `claim`
(`reserve`, the hot path), `lock_strategies` (the benchmark's). The shared values are in
goodsdrop.reservation_types; callers import everything public from here.
"""

from goodsdrop.reservation_types import Line, OrderRecord, Reservation, ReserveResult, Settled, Terms
from goodsdrop.reservations.claim import IDEMPOTENCY_TTL_SECONDS, SoldOutLook, queue_sold_out_look, reserve
from goodsdrop.reservations.lock_strategies import STRATEGIES
from goodsdrop.reservations.order_record import (
    close_record,
    due_reservations,
    forget_expiry,
    mark_persisted,
    pending_order_ids,
    read_record,
)
from goodsdrop.reservations.rebuild import ensure_recovered, load_stock, rebuild_held
from goodsdrop.reservations.settlement import MARKER_TTL_SECONDS, release_order, restock, settle, unrestock, unsettle
from goodsdrop.reservations.shards import MAX_SHARDS, close_shards, forget_shards, home_shard, product_level, spread
from goodsdrop.reservations.takes import LevelReads, level_reads, rebalance, refill_shard, take_lines

__all__ = ["IDEMPOTENCY_TTL_SECONDS", "MARKER_TTL_SECONDS", "MAX_SHARDS", "STRATEGIES", "LevelReads", "Line",
           "OrderRecord", "Reservation", "ReserveResult", "Settled", "SoldOutLook", "Terms", "close_record",
           "close_shards", "due_reservations", "ensure_recovered", "forget_expiry", "forget_shards", "home_shard",
           "level_reads", "load_stock", "mark_persisted", "pending_order_ids", "product_level",
           "queue_sold_out_look", "read_record", "rebalance", "rebuild_held", "refill_shard", "release_order",
           "reserve", "restock", "settle", "spread", "take_lines", "unrestock", "unsettle"]

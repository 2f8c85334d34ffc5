"""The six chaos drills in their short form (bench.chaos): a live drop oversubscribed 20x with mixed
payment tokens while a consumer dies, Kafka stops, Redis restarts empty, MariaDB stops, or every saga
event arrives twice and out of order; and one oversubscribed 10x while 5 bad records of each kind land on
every partition of every consumed topic. Each must end with every invariant of bench.invariants holding.

`python -m bench.chaos --long` runs bigger drops with longer outages.
"""

from __future__ import annotations

import json

import pytest

from bench.chaos import FAULTS, SHORT, run_drill
from goodsdrop.settings import settings

# The redis drill restarts the one Redis server empty. On a Redis Cluster the drill would have to
# empty one master of three, which it cannot yet, and the recovery is not proven for that case (the
# stock epoch is one key on one master, so it may survive the loss of another). Known gap: strictly
# expected to fail there, so the day it passes this marker must go.
ONE_MASTER_LOSS = pytest.mark.xfail(settings.redis_cluster, strict=True,
                                    reason="Redis Cluster: the drill cannot empty one master; recovery unproven")
DRILLS = [pytest.param(drill, 1, marks=ONE_MASTER_LOSS if drill == "redis" else ()) for drill in FAULTS]
DRILLS += [pytest.param("redis", 4, marks=ONE_MASTER_LOSS), pytest.param("duplicates", 8)]


@pytest.mark.parametrize("drill,shards", DRILLS)
def test_after_the_drill_no_order_unit_or_refund_is_lost(stack, drill, shards):
    result = run_drill(drill, SHORT, shards)
    print(json.dumps(result.row() | {"notes": result.notes}))  # the drill's figures (pytest -s shows them)
    assert result.report.violations == []
    assert result.recovered_seconds is not None, "the saga did not settle"
    assert result.unclean == {}, "every answer is an order, a business refusal or a retried 503"
    figures = result.report.figures
    assert figures.orders > 0 and figures.units_sold > 0
    assert figures.units_sold <= figures.units_start
    assert figures.refunded == figures.refunds_owed
    if drill == "poller":
        assert result.notes["killed"] and "not_replaced" not in result.notes
        assert result.notes["confirm_crashed_after_commit"]
    if drill == "redis":
        assert result.notes.get("sales_paused_s") is not None, "stock was never rebuilt"
    if drill == "duplicates":
        assert result.notes["copies_delivered"] > 0 and result.notes["drained"]
    if drill == "poison":  # every bad record dead-lettered by its consumer, with the right reason, none retried
        notes = result.notes
        assert notes["bad_records"] > 0 and notes["dead_lettered"] == notes["bad_records"], notes
        assert notes["wrong_reason"] == 0 and notes["by_mapping"] == 0, notes
        print(json.dumps(result.poison_row()))

"""The benchmark's comparison of the drop dashboard's report with its own counts."""

from __future__ import annotations

from bench import dashboard_check
from bench.flash_drop import problems_of


def test_the_load_generators_answers_map_to_the_dashboards():
    counts = {"202": 50, "409 OUT_OF_STOCK": 940, "409 PURCHASE_LIMIT_EXCEEDED": 3, "503 SERVICE_UNAVAILABLE": 2,
              "429 RATE_LIMITED": 5}
    expected = dashboard_check.expected_answers(counts, "NOT_ON_SALE")
    assert expected == {"ACCEPTED": 50, "OUT_OF_STOCK": 940, "PURCHASE_LIMIT_EXCEEDED": 3, "OTHER": 2,
                        "RATE_LIMITED": 5, "NOT_ON_SALE": 1}
    assert dashboard_check.expected_answers({"202": 1}, "202") == {"ACCEPTED": 2}


def _run(match: bool) -> dict:
    rows = [{"figure": "attempts", "bench": 1001, "dashboard": 1001 if match else 1000}]
    return {"label": "Lua reservation", "kind": "http", "clients": 500, "early_click": "NOT_ON_SALE",
            "stock": {"oversold": 0, "consistent": True}, "saga": {"settled": True, "orders": {}},
            "dashboard": {"match": match, "rows": rows, "dashboard": {}}}


def test_a_mismatch_is_a_problem_of_the_run_and_named():
    assert problems_of([_run(True)]) == []
    (problem,) = problems_of([_run(False)])
    assert "does not match" in problem and "attempts 1,001 ≠ dashboard 1,000" in problem
    assert "matches exactly" in dashboard_check.lines("x", _run(True)["dashboard"])[0]

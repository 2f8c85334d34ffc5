"""The drop dashboard's report against the benchmark's own counts, for every drop the benchmark runs.

After a drop has settled, the benchmark reads GET /dashboard/products/{id}/report as the drop's seller
and compares it with what it counted itself: every answer wrk got (by status and error code) plus
the early click, the orders per final status and the units sold (MySQL, bench.flash_drop.wait_saga /
audit_stock). Any difference is a problem of the run (exit code 1, printed loudly).
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx

from goodsdrop.telemetry import ANSWERS
from goodsdrop.tokens import issue_access_token


def answer_of(key: str) -> str:
    """The dashboard's answer for one of the load generator's count keys ("202", "409 OUT_OF_STOCK", ...)."""
    status, _, code = key.partition(" ")
    if status == "202":
        return "ACCEPTED"
    return code if code in ANSWERS else "OTHER"


def expected_answers(counts: dict[str, int], early_click: str | None) -> Counter[str]:
    """What the dashboard must have counted: wrk's answers and the click before the opening."""
    expected: Counter[str] = Counter()
    for key, n in counts.items():
        expected[answer_of(key)] += n
    if early_click is not None:
        expected[answer_of("202" if early_click == "202" else f"409 {early_click}")] += 1
    return expected


def compare(api: str, seller_id: int, product_id: int, counts: dict[str, int], early_click: str | None,
            saga: dict[str, Any], stock: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's figures beside the benchmark's; `match` is True when every row agrees."""
    token = issue_access_token(seller_id, "seller", True, uuid.uuid4().hex)[0]
    response = httpx.get(f"{api}/dashboard/products/{product_id}/report", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    if response.status_code != 200:
        return {"match": False, "rows": [],
                "error": f"GET report answered {response.status_code}: {response.text[:200]}"}
    doc = response.json()
    expected = expected_answers(counts, early_click)
    rows = [("attempts", sum(expected.values()), doc["attempts"]),
            ("attempts in the per-second series", sum(expected.values()), sum(s["attempts"] for s in doc["series"]))]
    rows += [(f"answer {answer}", expected.get(answer, 0), doc["answers"].get(answer, 0)) for answer in ANSWERS
             if expected.get(answer, 0) or doc["answers"].get(answer, 0)]
    orders = saga.get("orders", {})
    rows += [(f"orders {status}", orders.get(status, 0), doc["orders"].get(status, 0))
             for status in sorted(set(orders) | {s for s, n in doc["orders"].items() if n})]
    rows += [("confirmed", saga.get("confirmed", 0), doc["confirmed"]), ("units sold", stock["sold"], doc["unitsSold"]),
             ("stock left", stock["available"], doc["stock"])]
    return {"match": all(ours == theirs for _, ours, theirs in rows),
            "rows": [{"figure": name, "bench": ours, "dashboard": theirs} for name, ours, theirs in rows],
            "dashboard": {key: doc[key] for key in ("peakAttemptsPerSecond", "timeToSellOutSeconds", "buyersServed",
                                                    "paymentsDeclined", "unitsGivenBack", "refusals",
                                                    "reserveToConfirmedMs")}}


def lines(label: str, check: dict[str, Any]) -> list[str]:
    """The comparison as text (the terminal and the results' Markdown)."""
    if check.get("error"):
        return [f"- {label}: **the dashboard's report could not be read**: {check['error']}"]
    cells = ", ".join(f"{row['figure']} {row['bench']:,}" + ("" if row["bench"] == row["dashboard"]
                                                             else f" ≠ dashboard {row['dashboard']:,}")
                      for row in check["rows"])
    verdict = "matches exactly" if check["match"] else "**DOES NOT MATCH**"
    extra = check.get("dashboard", {})
    return [f"- {label}: the dashboard {verdict}: {cells}; the dashboard adds: peak "
            f"{extra.get('peakAttemptsPerSecond')} attempts/s, sold out in {extra.get('timeToSellOutSeconds')} s, "
            f"{extra.get('buyersServed')} buyers served, {extra.get('paymentsDeclined')} payments declined, "
            f"{extra.get('unitsGivenBack')} units given back"]

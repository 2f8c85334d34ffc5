"""Search timings and query plans: `python -m bench.search_timings [--repeat 20] [--explain]`.

Times the common searches end to end over HTTP (GET /products on this checkout's local stack,
sequential requests, warm functions) and, with `--explain`, prints MySQL's EXPLAIN of the exact
page and count queries `goodsdrop.catalogue.search_sql` builds for each (for a search of short
words only, the one bounded scan of `short_word_search_sql`). Seed a large catalogue
first with `python -m bench.seed_catalogue --products 100000`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from goodsdrop.catalogue import parse_search, scans_short_words_only, search_sql, short_word_search_sql
from goodsdrop.clients import mysql_cursor
from goodsdrop.settings import settings


def common_searches() -> list[tuple[str, dict[str, str]]]:
    with mysql_cursor() as cur:
        cur.execute("SELECT seller_id FROM products GROUP BY seller_id ORDER BY COUNT(*) DESC LIMIT 1")
        busiest_seller = str(cur.fetchone()["seller_id"])
        cur.execute("SELECT COUNT(*) AS n FROM products WHERE listed = 1")
        last_page = str(max(int(cur.fetchone()["n"]) // 100, 1))
    return [
        ("newest, page 1", {}),
        ("price_asc, page 1", {"sort": "price_asc"}),
        ("price_desc, page 1", {"sort": "price_desc"}),
        ("q=figure (common word)", {"q": "figure"}),
        ("q=hoshino figure (two words)", {"q": "hoshino figure"}),
        ("q=피규어 (Korean)", {"q": "피규어"}),
        ("q=수량 (2-char word, LIKE)", {"q": "수량"}),
        ("sellerId (busiest seller)", {"sellerId": busiest_seller}),
        ("sellerId + price_asc", {"sellerId": busiest_seller, "sort": "price_asc"}),
        ("price 10,000-20,000, price_asc", {"minPrice": "10000", "maxPrice": "20000", "sort": "price_asc"}),
        ("price 10,000-20,000, newest", {"minPrice": "10000", "maxPrice": "20000"}),
        ("status=on_sale", {"status": "on_sale"}),
        ("status=upcoming", {"status": "upcoming"}),
        ("status=sold_out", {"status": "sold_out"}),
        ("q=limited + on_sale + price<=50,000", {"q": "limited", "status": "on_sale", "maxPrice": "50000"}),
        ("last page, size 100", {"page": last_page, "size": "100"}),
        ("beyond the last page", {"page": str(int(last_page) + 10), "size": "100"}),
    ]


def explain(label: str, params: dict[str, str]) -> None:
    query = parse_search(params)
    if scans_short_words_only(query):
        ids_sql, ids_args = short_word_search_sql(query)
        statements = [("ids (one bounded scan)", ids_sql, ids_args)]
    else:
        page_sql, page_args, count_sql, count_args = search_sql(query)
        statements = [("page", page_sql, page_args), ("count", count_sql, count_args)]
    print(f"\n### {label}   {params or ''}")
    for kind, sql, args in statements:
        with mysql_cursor() as cur:
            cur.execute(f"EXPLAIN {sql}", args)
            rows = cur.fetchall()
        print(f"  {kind}:")
        for row in rows:
            print(f"    {row['select_type']!s:<8} {row['table']!s:<10} {row['type']!s:<9} key={row['key']!s:<27} "
                  f"rows={row['rows']!s:<6} {row['Extra'] or ''}")


def time_search(client: httpx.Client, params: dict[str, str], repeat: int) -> tuple[float, float, int]:
    samples = []
    total = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/products", params=params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        total = response.json()["total"]
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    with mysql_cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM products")
        print(f"products in the catalogue: {cur.fetchone()['n']:,}")
    searches = common_searches()
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=30) as client:
        client.get("/products")  # warm the function
        print(f"\n{'search':<38} {'median ms':>10} {'p95 ms':>8} {'total':>8}")
        for label, params in searches:
            median, p95, total = time_search(client, params, args.repeat)
            print(f"{label:<38} {median:>10.1f} {p95:>8.1f} {total:>8,}")
    if args.explain:
        for label, params in searches:
            explain(label, params)


if __name__ == "__main__":
    main()

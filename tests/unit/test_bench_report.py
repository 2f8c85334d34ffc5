"""The flash-drop benchmark's verdicts: an oversell fails the run loudly, targets are judged, outputs are valid."""

import struct
import zlib

from bench import flash_drop, loadgen
from bench.png_plot import Panel, bar_chart_png


def _run(name, throughput, p99, *, sold=100, stock=100, accepted=100, oversold=0, consistent=True):
    return {"name": name, "label": flash_drop.LABELS.get(name, name), "kind": "http", "clients": 500,
            "requests": 5000, "seconds": 5000 / throughput, "throughput": throughput,
            "latency_ms": {"mean": 90.0, "p50": 50.0, "p90": 80.0, "p99": p99, "max": 300.0},
            "codes": {"409 OUT_OF_STOCK": 4900, "202": 100}, "socket_errors": {}, "early_click": "NOT_ON_SALE",
            "stock": {"stock": stock, "accepted": accepted, "sold": sold, "held": 0, "available": 0,
                      "oversold": oversold, "consistent": consistent},
            "saga": {"settled": True, "orders": {"CONFIRMED": sold}, "p50_ms": 400.0, "p99_ms": 900.0},
            "cpu_s": {"api": 2.0, "redis": 0.3, "generator": 0.1}, "server_cpu_ms_per_request": 0.46,
            "api_cpu_ms_per_request": 0.4, "generator_cpu_pct": 4.0, "loadavg_1m": [1.0, 2.0]}


def _report(runs):
    report = {"runs": runs, "catalogue": None, "sse": None, "finished_at": "now", "loadavg_before": [1.0, 1.0, 1.0],
              "loadavg_after": [2.0, 1.0, 1.0], "plot": "x.png",
              "params": {"stock": 100, "clients": 500, "requests": 10, "limit": 2, "threads": 2, "quick": False},
              "machine": {k: "?" for k in ("cpu", "memory_gib", "os", "python", "redis", "mariadb", "kafka", "uvicorn",
                                           "api_workers", "wrk", "redis-benchmark")} | {"cores": 2}}
    report["problems"] = flash_drop.problems_of(runs)
    report["targets"] = flash_drop.evaluate(report)
    return report


def test_an_oversell_fails_the_run_with_exit_code_3():
    report = _report([_run("lua", 3200, 80, sold=103, accepted=103, oversold=3)])
    assert flash_drop.exit_code(report) == 3
    assert any("OVERSOLD by 3" in p for p in report["problems"])
    assert {"target": "0 units oversold (every run)", "measured": "3", "met": False} in report["targets"]
    assert "**PROBLEMS:**" in flash_drop.markdown(report)


def test_stock_records_that_disagree_are_a_problem_but_not_an_oversell():
    report = _report([_run("lua", 3200, 80, consistent=False)])
    assert flash_drop.exit_code(report) == 1


def test_targets_are_judged_on_the_same_run():
    report = _report([_run("lua", 3200, 80), _run("mysql_lock", 100, 4000), _run("redis_lock", 200, 3000)])
    verdicts = {t["target"]: t["met"] for t in report["targets"]}
    assert verdicts["Lua path >= 3,000 req/s at 500 clients"] is True
    assert verdicts["Lua path p99 < 100 ms"] is True
    assert verdicts["Lua >= 30x MySQL row lock (same run)"] is True  # 32x
    assert verdicts["Lua >= 20x Redis distributed lock (same run)"] is False  # 16x
    assert flash_drop.exit_code(report) == 0  # missed targets are shown, not failed
    table = flash_drop.markdown(report)
    assert "| Lua reservation | 5,000 | **3,200** |" in table and "10.0x" in table  # 3,200 vs the seed's 318.5


def test_wrk_result_line_is_parsed():
    out = ('Running...\nWRK_RESULT {"answers": 5000, "window_us": 2000000, "wrk_duration_us": 4100000, '
           '"errors": {"connect": 0, "read": 1, "write": 0, "status": 4900, "timeout": 0}, '
           '"latency_us": {"min": 100, "mean": 9000.5, "p50": 8000, "p90": 15000, "p99": 40000, "max": 90000}, '
           '"counts": {"202": 100, "409 OUT_OF_STOCK": 4900}}\n')
    result = loadgen._parse(out, "", 0.1)  # throughput over the window from first request to last answer
    assert result.requests == 5000 and result.throughput == 2500
    assert result.latency_ms["p99"] == 40.0 and result.socket_errors["read"] == 1
    assert list(result.counts) == ["409 OUT_OF_STOCK", "202"]  # most frequent first
    assert round(result.generator_cpu_pct) == 5


def test_the_plot_is_a_valid_png():
    png = bar_chart_png([Panel("Throughput", "req/s", ["lua", "core"], ["req/s"], [[3000.0], [80000.0]])], "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    idat_length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    assert len(zlib.decompress(png[41:41 + idat_length])) == height * (1 + 3 * width)

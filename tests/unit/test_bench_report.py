"""The benchmarks' report logic: an oversell fails the run loudly, targets are judged, outputs are valid."""

import ipaddress
import struct

import pytest

from bench import core_strategies, flash_drop, loadgen
from bench.drop_fixtures import bench_address
from bench.plots import Bars, Curve, CurvePanel, bar_chart, curve_chart


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
              "params": {"stock": 100, "clients": 500, "requests": 10, "limit": 2, "threads": 2, "quick": False,
                         "parts": ["drops"], "curve_requests": 5000}, "seconds": 60,
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
    report = _report([_run("lua", 1200, 900), _run("mysql_lock", 100, 4000), _run("redis_lock", 200, 3000)])
    verdicts = {t["target"]: t["met"] for t in report["targets"]}
    assert verdicts["Lua path >= 1,100 req/s at 500 clients"] is True
    assert verdicts["Lua path p99 <= 1,000 ms"] is True
    # Through HTTP the ratios are shown, not judged: the targets are at the reservation core.
    assert verdicts["HTTP: Lua ÷ MySQL row lock (shown; the targets are at the core)"] is None
    assert flash_drop.exit_code(report) == 0  # missed targets are shown, not failed
    table = flash_drop.markdown(report)
    assert "| Lua reservation | 5,000 | **1,200** |" in table and "3.8x" in table  # 1,200 vs the seed's 318.5


def _core_row(name, throughput, *, oversold=0):
    row = {"name": name, "label": core_strategies.LABELS[name], "requests": 5000, "throughput": throughput,
           "latency_ms": {"mean": 1.0, "p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0}, "answers": {"RESERVED": 100},
           "client_cpu_us_per_call": 300.0, "cores_busy_pct": 95.0, "start_skew_ms": 80.0, "loadavg_1m": [1.0, 1.2]}
    if name in core_strategies.STRATEGIES:
        row["stock"] = {"stock": 100, "accepted": 100, "reserved": 100, "available": 0, "holds": 100,
                        "oversold": oversold, "consistent": not oversold}
    return row


def test_the_core_ratios_are_the_targets_and_an_oversell_at_the_core_fails_the_run():
    core = {"workers": 500, "requests_per_worker": 10, "stock": 100, "cores": 2,
            "rows": [_core_row("noop", 90000), _core_row("lua", 6000), _core_row("mysql_lock", 150),
                     _core_row("redis_lock", 400, oversold=1)],
            "ratios": {"mysql_lock": 40.0, "redis_lock": 15.0}}
    report = _report([_run("lua", 1200, 900)])
    report["core"] = core
    report["targets"] = flash_drop.evaluate(report)
    verdicts = {t["target"]: t["met"] for t in report["targets"]}
    assert verdicts["core: Lua >= 30x MySQL row lock"] is True
    assert verdicts["core: Lua >= 20x Redis distributed lock"] is False
    assert verdicts["0 units oversold (every run)"] is False
    assert flash_drop.exit_code(report) == 3
    table = "\n".join(core_strategies.markdown_table(core))
    assert "| harness alone (no-op call) | 5,000 | **90,000** |" in table
    assert "**40.0x** (target ≥ 30x: met)" in table and "**15.0x** (target ≥ 20x: NOT met)" in table
    assert core_strategies.bound_by(_core_row("lua", 6000)) == "CPU"


def test_the_parts_to_run_are_chosen_by_flag_and_name_their_results():
    args = flash_drop.parse_args(["--only", "curve"])
    assert args.parts == ["curve"] and args.out.name == "flash_drop_curve"
    assert args.curve_clients == [50, 100, 200, 500, 1000]
    assert flash_drop.planned_phases(args)[1:7] == ["buyers and tokens", "curve: 50 clients", "curve: 100 clients",
                                                    "curve: 200 clients", "curve: 500 clients", "curve: 1000 clients"]
    assert flash_drop.parse_args(["--skip", "sse,core"]).parts == ["drops", "curve", "ceiling", "catalogue"]
    with pytest.raises(SystemExit):
        flash_drop.parse_args(["--only", "everything"])


def test_each_phase_is_one_line_when_it_starts_and_one_when_it_ends(capsys):
    phases = loadgen.Phases(["first", "second"])
    with phases.phase("first"):
        pass
    with pytest.raises(RuntimeError), phases.phase("second"):
        raise RuntimeError("boom")
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 4
    assert lines[0].endswith("0/2 first ...") and "1/2 first: done in" in lines[1]
    assert "2/2 second: FAILED in" in lines[3]


def test_made_up_source_addresses_are_distinct_and_in_the_benchmark_range():
    network = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544
    addresses = [bench_address(i) for i in range(70_000)]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(a) in network for a in addresses)


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


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_plots_are_pngs_with_log_axes_where_the_range_is_wide(tmp_path, monkeypatch):
    scales = []
    from matplotlib.axes import Axes

    original = Axes.set_yscale
    monkeypatch.setattr(Axes, "set_yscale", lambda self, value, **kw: (scales.append(value),
                                                                        original(self, value, **kw))[1])
    bar_chart(tmp_path / "bars.png", [Bars("Throughput", "req/s", ["lua", "row lock"], ["ours", "seed"],
                                           [[6000.0, 318.5], [150.0, 106.1]], seed_series="seed"),
                                      Bars("Latency", "ms", ["lua"], ["p50"], [[5.0]])], "t", "sub")
    assert scales == ["log"]  # 150 .. 6,000 spans more than a decade; the single latency does not
    width, height = _png_size(tmp_path / "bars.png")
    assert width > height > 200
    curve_chart(tmp_path / "curve.png", [CurvePanel("Throughput", "clients", "req/s",
                                                    [Curve("ours", [50, 1000], [900.0, 800.0])],
                                                    [("seed", 500, 318.5)])], "t")
    assert _png_size(tmp_path / "curve.png")[0] > 200


def test_import_times_are_summed_per_package_with_the_module_that_pulled_most_of_it_in():
    from bench.cold_starts import PHASE_MARK, parse_importtime

    stderr = "\n".join([
        f"{PHASE_MARK}import",
        "import time:      1000 |       1000 |     botocore",           # a small first import ...
        "import time:      2000 |       3000 |   aws_lambda_powertools",
        "import time:     40000 |      40000 |         botocore.session",  # ... and the big one, under kafka
        "import time:      5000 |      45000 |       kafka.sasl.msk",
        "import time:      3000 |      48000 |     kafka",
        "import time:       500 |      48500 |   goodsdrop.clients",
        "import time:       100 |      51600 | goodsdrop.http",
        f"{PHASE_MARK}first event",
        "import time:      7000 |       7000 | boto3",
    ])
    phases = parse_importtime(stderr)
    imports = phases["import"]
    assert list(imports["self_ms"]) == ["botocore", "kafka", "aws_lambda_powertools", "goodsdrop"]
    assert imports["self_ms"]["botocore"] == 41.0 and imports["self_ms"]["kafka"] == 8.0
    assert imports["via"]["botocore"] == "kafka.sasl.msk" and imports["via"]["kafka"] == "goodsdrop.clients"
    assert phases["first event"]["self_ms"] == {"boto3": 7.0}

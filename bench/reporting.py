"""What every benchmark shares: where results go, progress on stderr, the stack it needs, writing a report.

Kept apart from the benchmarks themselves so that each imports it and none imports another's main
module (bench.flash_drop runs bench.core_strategies as a part; the reverse import made a circle).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def say(text: str) -> None:
    """Progress for the reader, on stderr (stdout carries the results)."""
    print(text, file=sys.stderr, flush=True)


def ensure_stack() -> None:
    """Start the `make up` stack if it is not running (it stays up afterwards)."""
    from goodsdrop_local import stack

    if stack.is_healthy():
        return
    say("The stack is not running: starting it (make up; it stays up afterwards, `make down` stops it) ...")
    with contextlib.redirect_stdout(sys.stderr):  # its table is progress, not results
        stack.ensure_up()


def write_results(out: Path, report: dict[str, Any], markdown: Callable[[dict[str, Any]], str],
                  plot: Callable[[dict[str, Any], Path], list[Path]]) -> None:
    """Write `out`.md and .json of a benchmark's report and its plots (`out`.png and any beside it); print
    the Markdown."""
    out.parent.mkdir(parents=True, exist_ok=True)
    report["plots"] = [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)
                       for p in plot(report, out.with_suffix(".png"))]
    text = markdown(report)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\n" + text)
    say(f"Wrote {out.with_suffix('.md')}, .json and {', '.join(report['plots']) or 'no plot'} "
        f"in {report['seconds']} s.")

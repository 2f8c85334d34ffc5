"""The benchmarks' figures, drawn with matplotlib (headless: the Agg backend writes PNG files).

One look for every figure: a title with the run's conditions underneath, labelled axes with
their units, a log axis wherever the values span more than a decade (a lock strategy next to
the Lua path, 50 next to 1,000 clients), and the seed's figures drawn beside ours, hatched, so
a reader sees both in one glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

SEED_STYLE = {"color": "#bbbbbb", "hatch": "//", "edgecolor": "#666666"}
OURS = "#1f77b4"
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
WIDE_RANGE = 10.0  # max / min above which an axis goes logarithmic


@dataclass(frozen=True)
class Bars:
    """One panel of grouped bars: a value per (category, series); None leaves a gap."""

    title: str
    unit: str
    categories: Sequence[str]
    series: Sequence[str]
    values: Sequence[Sequence[float | None]]  # [category][series]
    seed_series: str | None = None  # the series that holds the seed's figures (drawn hatched)


def _thousands(value: float, _pos: object = None) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _log_if_wide(ax: Axes, values: Sequence[float], axis: str = "y") -> bool:
    positive = [v for v in values if v is not None and v > 0]
    wide = bool(positive) and max(positive) / min(positive) > WIDE_RANGE
    if wide:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(_thousands))
    return wide


def _new(columns: int, title: str, subtitle: str, width: float = 6.0, height: float = 4.6) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, columns, figsize=(width * columns, height), squeeze=False)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    if subtitle:
        fig.text(0.5, 0.005, subtitle, ha="center", va="bottom", fontsize=8, color="#555555")
    return fig, list(axes[0])


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_bars(ax: Axes, panel: Bars) -> None:
    count = max(len(panel.series), 1)
    width = 0.8 / count
    flat: list[float] = []
    for s, name in enumerate(panel.series):
        xs, heights = [], []
        for c in range(len(panel.categories)):
            value = panel.values[c][s]
            if value is not None and value > 0:
                xs.append(c - 0.4 + width * (s + 0.5))
                heights.append(value)
        flat += heights
        style = SEED_STYLE if name == panel.seed_series else {"color": SERIES_COLOURS[s % len(SERIES_COLOURS)]}
        bars = ax.bar(xs, heights, width * 0.92, label=name, **style)
        ax.bar_label(bars, labels=[_thousands(round(h, 1 if h < 10 else 0)) for h in heights], fontsize=7,
                     padding=2)
    ax.set_xticks(range(len(panel.categories)), panel.categories, fontsize=8)
    ax.set_title(panel.title, fontsize=10)
    log = _log_if_wide(ax, flat)
    ax.set_ylabel(f"{panel.unit}{' (log scale)' if log else ''}")
    if log and flat:
        ax.set_ylim(min(flat) / 2, max(flat) * 3)
    elif flat:
        ax.set_ylim(0, max(flat) * 1.18)
    ax.grid(axis="y", which="both", alpha=0.25)
    if len(panel.series) > 1:
        ax.legend(fontsize=8)


def bar_chart(path: Path, panels: Sequence[Bars], title: str, subtitle: str = "") -> None:
    """Grouped bar panels side by side, written to `path` (PNG)."""
    fig, axes = _new(len(panels), title, subtitle)
    for ax, panel in zip(axes, panels, strict=True):
        _draw_bars(ax, panel)
    _save(fig, path)


@dataclass(frozen=True)
class Curve:
    """One line of a curve plot: y against x, with point labels optional."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    style: str = "o-"


@dataclass(frozen=True)
class CurvePanel:
    """A panel of lines over the same x axis, plus single reference points (the seed's)."""

    title: str
    x_label: str
    y_unit: str
    curves: Sequence[Curve]
    references: Sequence[tuple[str, float, float]] = ()  # (label, x, y)


def curve_chart(path: Path, panels: Sequence[CurvePanel], title: str, subtitle: str = "") -> None:
    """Line panels side by side (log axes where the values span more than a decade), written to `path`."""
    fig, axes = _new(len(panels), title, subtitle)
    for ax, panel in zip(axes, panels, strict=True):
        xs: list[float] = []
        ys: list[float] = []
        for i, curve in enumerate(panel.curves):
            ax.plot(curve.xs, curve.ys, curve.style, label=curve.label, color=SERIES_COLOURS[i % len(SERIES_COLOURS)])
            for x, y in zip(curve.xs, curve.ys, strict=True):
                ax.annotate(_thousands(round(y)), (x, y), textcoords="offset points", xytext=(0, 5), ha="center",
                            fontsize=7)
            xs += list(curve.xs)
            ys += list(curve.ys)
        for label, x, y in panel.references:
            ax.scatter([x], [y], marker="s", s=60, label=label, **{k: v for k, v in SEED_STYLE.items()
                                                                   if k != "hatch"})
            xs.append(x)
            ys.append(y)
        x_log = _log_if_wide(ax, xs, "x")
        y_log = _log_if_wide(ax, ys, "y")
        if not y_log:
            ax.set_ylim(bottom=0)  # a linear axis starts at zero, so the heights compare
        if xs and x_log:
            ax.set_xticks(sorted(set(xs)), [_thousands(x) for x in sorted(set(xs))])
            ax.xaxis.set_minor_formatter(NullFormatter())  # only the measured points are labelled
        ax.set_xlabel(f"{panel.x_label}{' (log scale)' if x_log else ''}")
        ax.set_ylabel(f"{panel.y_unit}{' (log scale)' if y_log else ''}")
        ax.set_title(panel.title, fontsize=10)
        ax.grid(which="both", alpha=0.25)
        ax.legend(fontsize=8)
    _save(fig, path)


def stacked_barh(path: Path, labels: Sequence[str], stacks: dict[str, Sequence[float]], unit: str,
                 target: float | None, target_label: str, title: str, subtitle: str = "") -> None:
    """Horizontal stacked bars, one per label (e.g. a function's import + first event), with a target line."""
    fig, (ax,) = _new(1, title, subtitle, width=10.0, height=max(4.0, 0.26 * len(labels) + 1.5))
    left = [0.0] * len(labels)
    for i, (name, values) in enumerate(stacks.items()):
        ax.barh(range(len(labels)), values, left=left, label=name, color=SERIES_COLOURS[i % len(SERIES_COLOURS)])
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, total in enumerate(left):
        ax.annotate(f"{total:,.0f}", (total, y), textcoords="offset points", xytext=(3, -3), fontsize=7)
    if target is not None:
        ax.axvline(target, color="#d62728", linestyle="--", label=target_label)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)

"""A tiny dependency-free PNG bar chart (zlib + a 5x7 bitmap font), enough for the benchmark's plot.

`bar_chart_png(panels, title)` draws one panel per entry side by side: horizontal bars on a log
scale, each bar labelled with its value, groups of bars (e.g. p50/p90/p99 per strategy) coloured
by series. No matplotlib, no Pillow: the image is RGB bytes written as one IDAT chunk.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

# Classic 5x7 font, ASCII 32..126: five column bytes per glyph, bit 0 = top row.
_FONT = bytes.fromhex(
    "0000000000" "00005f0000" "0007000700" "147f147f14" "242a7f2a12" "2313086462" "3649552250" "0005030000"
    "001c224100" "0041221c00" "082a1c2a08" "08083e0808" "0050300000" "0808080808" "0060600000" "2010080402"
    "3e5149453e" "00427f4000" "4261514946" "2141454b31" "1814127f10" "2745454539" "3c4a494930" "0171090503"
    "3649494936" "064949291e" "0036360000" "0056360000" "0008142241" "1414141414" "4122140800" "0201510906"
    "324979413e" "7e1111117e" "7f49494936" "3e41414122" "7f4141221c" "7f49494941" "7f09090101" "3e41415132"
    "7f0808087f" "00417f4100" "2040413f01" "7f08142241" "7f40404040" "7f0204027f" "7f0408107f" "3e4141413e"
    "7f09090906" "3e4151215e" "7f09192946" "4649494931" "01017f0101" "3f4040403f" "1f2040201f" "7f2018207f"
    "6314081463" "0304780403" "6151494543" "00007f4141" "0204081020" "41417f0000" "0402010204" "4040404040"
    "0001020400" "2054545478" "7f48444438" "3844444420" "384444487f" "3854545418" "087e090102" "081454543c"
    "7f08040478" "00447d4000" "2040443d00" "007f102844" "00417f4000" "7c04180478" "7c08040478" "3844444438"
    "7c14141408" "081414187c" "7c08040408" "4854545420" "043f444020" "3c4040207c" "1c2040201c" "3c4030403c"
    "4428102844" "0c5050503c" "4464544c44" "0008364100" "00007f0000" "0041360800" "0201020402"
)

WHITE, BLACK, GREY, LIGHT = (255, 255, 255), (30, 30, 30), (120, 120, 120), (225, 225, 225)
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


class Canvas:
    """An RGB raster with rectangles and text."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(WHITE) * width * height)

    def rect(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x: int, y: int, value: str, color: tuple[int, int, int] = BLACK, scale: int = 2) -> int:
        """Draw `value` with its top-left at (x, y); returns the x after it."""
        for ch in value:
            code = ord(ch) if 32 <= ord(ch) <= 126 else ord("?")
            glyph = _FONT[(code - 32) * 5:(code - 32) * 5 + 5]
            for col, bits in enumerate(glyph):
                for row in range(7):
                    if bits >> row & 1:
                        self.rect(x + col * scale, y + row * scale, scale, scale, color)
            x += 6 * scale
        return x

    @staticmethod
    def text_width(value: str, scale: int = 2) -> int:
        return len(value) * 6 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                       for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + \
            chunk(b"IEND", b"")


@dataclass
class Panel:
    """One chart: for each category (a row group), one value per series."""

    title: str
    unit: str
    categories: list[str]
    series: list[str]
    values: list[list[float | None]]  # values[category][series]


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _draw_panel(canvas: Canvas, panel: Panel, x0: int, y0: int, width: int, height: int) -> None:
    canvas.text(x0, y0, panel.title, BLACK, 2)
    legend_x = x0
    for s, name in enumerate(panel.series):
        if len(panel.series) > 1:
            canvas.rect(legend_x, y0 + 24, 12, 12, PALETTE[s % len(PALETTE)])
            legend_x = canvas.text(legend_x + 16, y0 + 24, name, GREY, 2) + 14
    label_w = max(Canvas.text_width(c) for c in panel.categories) + 10
    plot_x, plot_y = x0 + label_w, y0 + 48
    plot_w, plot_h = width - label_w - 70, height - 80
    values = [v for row in panel.values for v in row if v is not None and v > 0]
    if not values:
        return
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10

    def px(value: float) -> int:
        return int(plot_w * (math.log10(max(value, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))

    decade = lo
    while decade <= hi * 1.0001:  # grid line per decade, labelled
        gx = plot_x + px(decade)
        canvas.rect(gx, plot_y, 1, plot_h, LIGHT)
        label = _fmt(decade)
        canvas.text(gx - Canvas.text_width(label, 1) // 2, plot_y + plot_h + 4, label, GREY, 1)
        decade *= 10
    canvas.text(plot_x + plot_w - Canvas.text_width(panel.unit + " (log)", 1), plot_y + plot_h + 16,
                panel.unit + " (log)", GREY, 1)
    group_h = plot_h / len(panel.categories)
    bar_h = max(4, int((group_h - 8) / len(panel.series)))
    for c, category in enumerate(panel.categories):
        gy = int(plot_y + c * group_h + 4)
        canvas.text(x0, gy + (bar_h * len(panel.series)) // 2 - 7, category, BLACK, 2)
        for s, value in enumerate(panel.values[c]):
            if value is None or value <= 0:
                continue
            y = gy + s * bar_h
            w = max(1, px(value))
            canvas.rect(plot_x, y, w, bar_h - 2, PALETTE[s % len(PALETTE)])
            canvas.text(plot_x + w + 4, y + max(0, (bar_h - 2 - 7) // 2), _fmt(value), BLACK, 1)
    canvas.rect(plot_x, plot_y, 1, plot_h, BLACK)


def bar_chart_png(panels: list[Panel], title: str, subtitle: str = "", panel_width: int = 620,
                  panel_height: int = 360) -> bytes:
    """The PNG bytes of `panels` side by side under a title."""
    canvas = Canvas(panel_width * len(panels) + 20, panel_height + 70)
    canvas.text(10, 10, title, BLACK, 2)
    if subtitle:
        canvas.text(10, 32, subtitle, GREY, 1)
    for i, panel in enumerate(panels):
        _draw_panel(canvas, panel, 10 + i * panel_width, 56, panel_width - 20, panel_height)
    return canvas.png()

"""`make top`: rates over the interval between two samples, totals so far, saga lag per mapping."""

from __future__ import annotations

from goodsdrop_local.top import Sample, frame


def _mapping(processed: int, lag: dict[str, int | None], dead: int = 0) -> dict:
    return {"mapping": "ProcessPaymentMapping", "up": True, "processed": processed, "retried": 0,
            "dead_lettered": dead, "lag": lag, "retrying": []}


def test_a_frame_shows_rates_totals_lag_dead_letters_and_cpu():
    before = Sample(10.0, 100, {"202": 40, "409 OUT_OF_STOCK": 50}, {"api": 1.0, "redis": 0.2},
                    [_mapping(30, {"payments-0": 5})])
    now = Sample(12.0, 700, {"202": 50, "409 OUT_OF_STOCK": 640, "200": 10}, {"api": 2.5, "redis": 0.3},
                 [_mapping(50, {"payments-0": 3, "payments-1": None}, dead=2)],
                 {"subscribers": 4, "drop_watchers": 2, "drop_frames": 9, "published": 7})
    text = frame(before, now)
    assert "API: 300.0 requests/s, 700 since the workers started" in text
    assert "409 OUT_OF_STOCK" in text and "295.0" in text  # (640 - 50) / 2 s
    assert "ProcessPaymentMapping" in text and "10.0" in text and "3 (0:3 1:?)" in text
    assert "dead letters so far: 2" in text
    assert "2 drop dashboard(s)" in text
    api_line = next(line for line in text.splitlines() if line.strip().startswith("api "))
    assert api_line.split()[-1] == "75.0"  # 1.5 CPU s over 2 s

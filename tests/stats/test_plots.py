"""The report's charts, drawn: what a reader sees."""

from __future__ import annotations

from itertools import combinations

import matplotlib

from pipeline.stats import plots
from pipeline.stats.shard_stats import SIGNALS


def test_quality_signal_titles_do_not_run_into_their_neighbours() -> None:
    # Every signal the report draws, each with a five-digit count beyond its thresholds: the
    # longest titles the grid shows.
    signals = [
        {
            "signal": s.column,
            "label": s.label,
            "log_x": s.log_x,
            "beyond_threshold": 12_345,
            "thresholds": [{"value": 2.0}],
            "histogram": {"counts": [3, 5, 2], "edges": [1.0, 2.0, 3.0, 4.0]},
        }
        for s in SIGNALS
    ]
    with matplotlib.rc_context(plots.STYLE):
        fig = plots.signals_figure(signals, "#2563eb")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    assert len(boxes) == len(SIGNALS)
    assert not [(a, b) for a, b in combinations(range(len(boxes)), 2) if boxes[a].overlaps(boxes[b])]

"""The report's charts: plain numbers in, PNG bytes out.

Figures are built on the Agg canvas directly (no pyplot), so no global backend or figure state is
touched and the functions are safe in any worker process. Each chart has a title, axis labels and
units; labels are drawn literally (no mathtext), because reason names and language codes are data.
"""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

STYLE = {
    "text.parse_math": False,  # a "$" in a label is data, not a formula
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
}
STAGE_COLORS = {"input": "#6b7280", "quality": "#2563eb", "dedup": "#d97706", "privacy": "#059669"}
BEFORE_COLOR, AFTER_COLOR = "#93c5fd", "#1d4ed8"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No Software/date metadata: the same numbers give byte-identical PNGs.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


THOUSANDS = StrMethodFormatter("{x:,.0f}")


def _bar_height(n: float) -> float:
    """Figure height for n horizontal bars: readable labels whatever n is."""
    return 1.2 + 0.28 * max(n, 1)


def funnel_chart(stages: Sequence[str], docs: Sequence[int], docs_removed_share: Sequence[float | None],
                 mib: Sequence[float], mib_removed_share: Sequence[float | None]) -> bytes:
    """Documents and MiB left after each stage; bars annotated with the share that stage removed."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.6)
        fig.suptitle("Left after each stage (−x% = share that stage removed)", fontweight="bold")
        colors = [STAGE_COLORS.get(s, "#6b7280") for s in stages]
        panels = ((docs, docs_removed_share, "Documents", "documents", "{x:,.0f}"),
                  (mib, mib_removed_share, "Size", "MiB", "{x:,.1f}"))
        for ax, (values, shares, title, unit, fmt) in zip(fig.subplots(1, 2), panels):
            bars = ax.bar(stages, values, color=colors)
            removed = [f"\n−{share:.1%}" if share else "" for share in shares]
            ax.bar_label(bars, labels=[fmt.format(x=v) + r for v, r in zip(values, removed)],
                         padding=2, fontsize=8)
            ax.set_title(title)
            ax.set_xlabel("stage")
            ax.set_ylabel(unit)
            ax.yaxis.set_major_formatter(StrMethodFormatter(fmt))
            ax.margins(y=0.2)
        return _png(fig)


def _counted_bars(labels: Sequence[str], counts: Sequence[int], colors: Sequence[str] | str,
                  title: str, xlabel: str) -> bytes:
    """One labelled horizontal bar per item, the first item on top."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, _bar_height(len(labels)))
        ax = fig.subplots()
        y = list(range(len(labels)))[::-1]
        bars = ax.barh(y, counts, color=colors)
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=2, fontsize=8)
        ax.set_yticks(y, labels)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.margins(x=0.12)
        return _png(fig)


def reasons_chart(labels: Sequence[str], counts: Sequence[int], stages: Sequence[str]) -> bytes:
    """Removed documents per (stage, reason), one horizontal bar each, coloured by stage."""
    colors = [STAGE_COLORS.get(s, "#6b7280") for s in stages]
    return _counted_bars(labels, counts, colors, "Removal reasons", "removed documents")


def languages_chart(langs: Sequence[str], before: Sequence[int], after: Sequence[int]) -> bytes:
    """Documents per language before and after quality filtering, paired horizontal bars."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, _bar_height(len(langs) * 0.9))
        ax = fig.subplots()
        y = list(range(len(langs)))[::-1]
        ax.barh([v + 0.2 for v in y], before, height=0.4, color=BEFORE_COLOR, label="before quality")
        ax.barh([v - 0.2 for v in y], after, height=0.4, color=AFTER_COLOR, label="after quality")
        ax.set_yticks(y, langs)
        ax.set_title("Languages before and after quality filtering")
        ax.set_xlabel("documents")
        ax.set_ylabel("language (fastText lid.176 label)")
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # never over a bar
        return _png(fig)


def pii_chart(entities: Sequence[str], counts: Sequence[int]) -> bytes:
    """PII entities replaced by placeholders, per entity type."""
    return _counted_bars(entities, counts, STAGE_COLORS["privacy"], "PII entities replaced", "entities found (count)")


def loss_chart(train: Sequence[tuple[int, float]], val: Sequence[tuple[int, float]]) -> bytes:
    """Training and validation loss against optimizer step."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.6)
        ax = fig.subplots()
        if train:
            ax.plot(*zip(*train), color=BEFORE_COLOR, linewidth=1, label="train loss")
        if val:
            ax.plot(*zip(*val), color=AFTER_COLOR, marker="o", markersize=3, label="val loss")
        ax.set_title("Pretraining loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.legend(loc="upper right")
        return _png(fig)

"""The report's charts: plain numbers in, PNG bytes out.

Figures are built on the Agg canvas directly (no pyplot), so no global backend or figure state is
touched and the functions are safe in any worker process. Each chart has a title, axis labels and
units; labels are drawn literally (no mathtext), because reason names and language codes are data.
"""

from __future__ import annotations

import io
import statistics
import textwrap
from collections.abc import Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

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
INPUT_COLOR = "#6b7280"  # stages bring their own colours (pipeline/stages.py)
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


def _log_x(ax) -> None:
    """A log x axis labelled 1, 10, 1,000: the default labels are mathtext, which STYLE turns off."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _bar_height(n: float) -> float:
    """Figure height for n horizontal bars: readable labels whatever n is."""
    return 1.2 + 0.28 * max(n, 1)


def funnel_chart(
    stages: Sequence[str],
    colors: Sequence[str],
    docs: Sequence[int],
    docs_removed_share: Sequence[float | None],
    mib: Sequence[float],
    mib_removed_share: Sequence[float | None],
) -> bytes:
    """Documents and MiB left after each stage; bars annotated with the share that stage removed."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.6)
        fig.suptitle("Left after each stage (−x% = share that stage removed)", fontweight="bold")
        panels = (
            (docs, docs_removed_share, "Documents", "documents", "{x:,.0f}"),
            (mib, mib_removed_share, "Size", "MiB", "{x:,.1f}"),
        )
        for ax, (values, shares, title, unit, fmt) in zip(fig.subplots(1, 2), panels):
            bars = ax.bar(stages, values, color=colors)
            removed = [f"\n−{share:.1%}" if share else "" for share in shares]
            ax.bar_label(bars, labels=[fmt.format(x=v) + r for v, r in zip(values, removed)], padding=2, fontsize=8)
            ax.set_title(title)
            ax.set_xlabel("stage")
            ax.set_ylabel(unit)
            ax.yaxis.set_major_formatter(StrMethodFormatter(fmt))
            ax.margins(y=0.2)
        return _png(fig)


def _counted_bars(
    labels: Sequence[str], counts: Sequence[int], colors: Sequence[str] | str, title: str, xlabel: str
) -> bytes:
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


def reasons_chart(labels: Sequence[str], counts: Sequence[int], colors: Sequence[str]) -> bytes:
    """Removed documents per (stage, reason), one horizontal bar each, coloured by stage."""
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


def records_chart(kinds: Sequence[str], counts: Sequence[int], color: str) -> bytes:
    """Records of the raw web input per WARC record type."""
    return _counted_bars(kinds, counts, color, "Input records by type", "records")


def pii_chart(entities: Sequence[str], counts: Sequence[int], color: str) -> bytes:
    """PII entities replaced by placeholders, per entity type."""
    return _counted_bars(entities, counts, color, "PII entities replaced", "entities found (count)")


def lengths_chart(before: dict, after: dict, before_label: str, after_label: str) -> bytes:
    """Characters and words per document before and after filtering, on log-spaced bins."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.4)
        fig.suptitle("Document length before and after filtering", fontweight="bold")
        for ax, unit in zip(fig.subplots(1, 2), ("chars", "words")):
            for hist, color, label in (
                (before[unit]["histogram"], BEFORE_COLOR, before_label),
                (after[unit]["histogram"], AFTER_COLOR, after_label),
            ):
                ax.stairs(hist["counts"], hist["edges"], color=color, linewidth=2, label=label)
            _log_x(ax)
            ax.set_title(f"{unit} per document")
            ax.set_xlabel(f"{unit} (log scale)")
            ax.set_ylabel("documents")
            ax.yaxis.set_major_formatter(THOUSANDS)
            ax.legend(loc="upper right", frameon=False)
        return _png(fig)


def signals_chart(signals: Sequence[dict], color: str) -> bytes:
    """One histogram per quality signal with its thresholds drawn as red dashed lines."""
    with matplotlib.rc_context(STYLE):
        return _png(signals_figure(signals, color))


def signals_figure(signals: Sequence[dict], color: str) -> Figure:
    """`signals_chart`'s figure, drawn once the caller saves it (under STYLE)."""
    cols = 3
    rows = -(-len(signals) // cols)
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 2.4 * rows + 0.5)
        fig.suptitle("Quality signals of every document that reached the rules (red: thresholds)", fontweight="bold")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, signal in zip(axes, signals):
            hist = signal["histogram"]
            ax.stairs(hist["counts"], hist["edges"], fill=True, color=color, alpha=0.7)
            for t in signal["thresholds"]:
                ax.axvline(t["value"], color="#b91c1c", linestyle="--", linewidth=1.2)
            if signal["log_x"]:
                _log_x(ax)
                # Every other power of ten: "100,000" and "1,000,000" side by side run together.
                ax.xaxis.set_major_locator(LogLocator(base=100))
            # A third of the figure's width holds ~35 bold characters at this size: longer labels
            # ran into the neighbouring chart's title. The count goes on a line of its own.
            label = textwrap.fill(signal["label"], 35)
            ax.set_title(f"{label}\n({signal['beyond_threshold']:,} beyond)", fontsize=8)
            ax.set_xlabel(signal["signal"], fontsize=7)
            ax.set_ylabel("documents", fontsize=7)
            ax.tick_params(labelsize=7)
        for ax in axes[len(signals) :]:
            ax.set_visible(False)
        return fig


def scores_chart(edges: Sequence[float], histograms: dict[str, Sequence[int]], threshold: float | None) -> bytes:
    """The share of each source's documents per classifier score bin, and the cut (red) when it is a threshold."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3)
        ax = fig.subplots()
        for source, counts in histograms.items():
            total = max(sum(counts), 1)
            ax.stairs([c / total for c in counts], edges, linewidth=2, label=source)
        if threshold is not None:
            ax.axvline(threshold, color="#b91c1c", linestyle="--", linewidth=1.2, label="threshold")
        ax.set_title("Quality classifier score per source")
        ax.set_xlabel("score (probability of the positive label)")
        ax.set_ylabel("share of the source's documents")
        ax.legend(loc="upper center", frameon=False, ncols=min(len(histograms) + 1, 5))
        return _png(fig)


def clusters_chart(clusters_by_size: dict[str, int], color: str) -> bytes:
    """How many duplicate clusters have 2, 3, ... members."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3)
        ax = fig.subplots()
        sizes = list(clusters_by_size)
        bars = ax.bar(sizes, list(clusters_by_size.values()), color=color)
        ax.bar_label(bars, labels=[f"{n:,}" for n in clusters_by_size.values()], padding=2, fontsize=8)
        ax.set_title("Duplicate clusters by size")
        ax.set_xlabel("documents in the cluster (1 kept, the rest removed)")
        ax.set_ylabel("clusters")
        ax.yaxis.set_major_formatter(THOUSANDS)
        ax.margins(y=0.15)
        return _png(fig)


def pii_languages_chart(by_language: dict[str, dict[str, int]]) -> bytes:
    """Replaced PII entities per language and type: a heat map with the count in each cell."""
    langs = sorted(by_language, key=lambda lang: (-sum(by_language[lang].values()), lang))
    entities = sorted({e for counts in by_language.values() for e in counts})
    grid = [[by_language[lang].get(e, 0) for e in entities] for lang in langs]
    with matplotlib.rc_context({**STYLE, "axes.grid": False}):
        fig = _figure(9, 1.6 + 0.3 * len(langs))
        ax = fig.subplots()
        # Log colours: one PERSON-heavy language must not wash out every other cell.
        image = ax.imshow(
            [[v or float("nan") for v in row] for row in grid],
            cmap="Greens",
            norm=LogNorm(vmin=1, vmax=max(max(row) for row in grid)),
            aspect="auto",
        )
        for y, row in enumerate(grid):
            for x, value in enumerate(row):
                ax.text(
                    x,
                    y,
                    f"{value:,}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.3 * max(max(r) for r in grid) else "#1f2937",
                )
        ax.set_xticks(range(len(entities)), entities, rotation=30, ha="right")
        ax.set_yticks(range(len(langs)), langs)
        ax.set_title("PII entities replaced per language")
        ax.set_xlabel("entity type")
        ax.set_ylabel("language")
        # Plain numbers: the default log labels are mathtext, which parse_math=False prints raw.
        fig.colorbar(image, ax=ax, label="entities (log colour scale)", format=THOUSANDS)
        return _png(fig)


def tokenizer_chart(langs: Sequence[str], bytes_per_token: Sequence[float], tokens_per_word: Sequence[float]) -> bytes:
    """Compression per language: bytes per token (higher is better) and tokens per word."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.2)
        fig.suptitle("Tokenizer compression per language", fontweight="bold")
        panels = (
            (bytes_per_token, "bytes per token (higher = fewer tokens)"),
            (tokens_per_word, "tokens per word (lower = fewer tokens)"),
        )
        for ax, (values, label) in zip(fig.subplots(1, 2), panels):
            bars = ax.bar(langs, values, color=AFTER_COLOR)
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=2, fontsize=7)
            ax.set_xlabel("language")
            ax.set_ylabel(label)
            ax.margins(y=0.15)
        return _png(fig)


def mixture_chart(sources: Sequence[str], target: Sequence[float], realised: Sequence[float]) -> bytes:
    """Each source's target and realised share of training tokens, side by side."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, _bar_height(len(sources) * 0.9))
        ax = fig.subplots()
        y = list(range(len(sources)))[::-1]
        ax.barh([v + 0.2 for v in y], target, height=0.4, color=BEFORE_COLOR, label="target share")
        bars = ax.barh([v - 0.2 for v in y], realised, height=0.4, color=AFTER_COLOR, label="realised share")
        ax.bar_label(bars, labels=[f"{r:.1%}" for r in realised], padding=2, fontsize=8)
        ax.set_yticks(y, sources)
        ax.set_title("Mixture: share of training tokens per source")
        ax.set_xlabel("share of training tokens")
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:.0%}"))
        ax.margins(x=0.12)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _png(fig)


def loss_chart(
    train: Sequence[tuple[int, float]],
    val: Sequence[tuple[int, float]],
    train_bpb: Sequence[tuple[int, float]],
    val_bpb: Sequence[tuple[int, float]],
) -> bytes:
    """Loss (nats/token) and bits per byte against optimizer step."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.4)
        fig.suptitle("Pretraining curves", fontweight="bold")
        panels = (
            (train, val, "cross-entropy (nats/token)", "loss"),
            (train_bpb, val_bpb, "bits per byte", "bits per byte"),
        )
        for ax, (tr, va, ylabel, title) in zip(fig.subplots(1, 2), panels):
            if tr:
                ax.plot(*zip(*tr), color=BEFORE_COLOR, linewidth=1, label="train")
            if va:
                ax.plot(*zip(*va), color=AFTER_COLOR, marker="o", markersize=3, label="val")
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.set_ylabel(ylabel)
            ax.legend(loc="upper right")
        return _png(fig)


def ablation_chart(variants: Sequence[str], bpb: Sequence[Sequence[float]], colors: Sequence[str]) -> bytes:
    """Validation bits per byte per corpus variant: the mean over seeds as a bar, +-1 standard
    deviation as its whisker, each seed as a dot."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, _bar_height(len(variants)))
        ax = fig.subplots()
        y = list(range(len(variants)))[::-1]
        means = [statistics.fmean(runs) for runs in bpb]
        spreads = [statistics.stdev(runs) if len(runs) > 1 else 0.0 for runs in bpb]
        ax.barh(y, means, xerr=spreads, color=colors, alpha=0.8, capsize=4, error_kw={"linewidth": 1})
        # Differences are a few percent of the value: a zero-based axis would hide them.
        low, high = min(min(r) for r in bpb), max(max(r) for r in bpb)
        pad = (high - low) * 0.6 or 0.05
        for row, runs, mean, spread in zip(y, bpb, means, spreads):
            ax.plot(runs, [row] * len(runs), "o", color="black", markersize=3)
            # The label right of the whisker and the dots, so that neither hides it.
            end = max(mean + spread, *runs)
            ax.text(end + pad * 0.1, row, f"{mean:.4f} ± {spread:.4f}", va="center", fontsize=8)
        ax.set_yticks(y, variants)
        ax.set_xlim(low - pad, high + pad * 2)
        ax.set_title("Ablations: bits per byte per corpus variant")
        ax.set_xlabel("bits per byte, lower is better (bar: mean over seeds, whisker: ±1 std, dots: seeds)")
        return _png(fig)

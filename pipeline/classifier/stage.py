"""The classifier stage: a fastText quality classifier trained in the build, or a user's own.

A stage of its own rather than a rule of the quality stage: its model is trained on the build's
raw input (a build step the quality stage has no use for), it runs after the cheap rules so it
scores only what they kept, as GPT-3 and DCLM place it, and a source switches it on or off with
its own section (a `web` source classified, books not).

1. `train_classifier`, once per build (skipped with `classifier.model`, whose file is the
   artifact): positives are the reference text, that is the documents of
   `classifier.positive_source` as they entered the pipeline, or the lines of the perplexity
   reference folder; negatives as many documents of the raw input of the other sources (with
   `classifier.unit: line`, lines of those documents, and a document's score is its lines'
   weighted mean). Both are seeded bottom-k samples by id hash (and line number), so a shard
   layout or worker count never changes them. The training set (`_classifier/train.txt`) and the model (`_classifier/model.bin`)
   stay in the build, fingerprinted by the files they were drawn from and the settings.
2. `run_shard`, per shard: `quality_classifier_score` on every row; below the threshold (or by
   GPT-3's noisy Pareto rule, a seeded draw per document id) removed as `classifier_low`.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import steps
from pipeline.classifier import model
from pipeline.config import ClassifierConfig
from pipeline.errors import InputError
from pipeline.quality import perplexity
from pipeline.shards import combined_fingerprint, fingerprint
from pipeline.stage import BuildContext, ShardContext, StageResult, split_by_reason
from pipeline.stats import shard_stats
from pipeline.tokenizer.train import hash_unit

SCORE = "quality_classifier_score"
HISTOGRAM_BINS = 20


class _Sample:
    """The k keys of smallest seeded hash among all offered, each with its payload: a sample that
    no order of offering (shard layout, worker count) changes."""

    def __init__(self, k: int, seed: str) -> None:
        self.k, self.seed = k, seed
        self._heap: list[tuple[float, str, Any]] = []  # (-hash, key, payload): the largest hash on top

    def offer(self, key: str, payload: Any = None) -> None:
        item = (-hash_unit(key, self.seed), key, payload)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def items(self) -> list[tuple[str, Any]]:
        """(key, payload) in hash order."""
        return [(key, payload) for _, key, payload in sorted(self._heap, key=lambda item: (-item[0], item[1]))]


def _reference_lines(cfg: Any) -> list[tuple[str, str]]:
    """(key, text) of every reference document of the perplexity reference folder."""
    lines = []
    for lang, path in perplexity.reference_files(cfg.quality.perplexity).items():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                lines.append((f"{lang}:{number}", line))
    return lines


def _documents(path: Path, name: str) -> list[tuple[str, str]]:
    """(key, text) of a shard's documents, keyed by shard name and id (ids repeat across sources)."""
    table = pq.read_table(path, columns=["id", "text"])
    return [(f"{name}/{doc_id}", text) for doc_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist())]


def train_classifier(ctx: BuildContext) -> dict:
    """Build step: the training set and model, once per build (see the module docstring)."""
    cfg: ClassifierConfig = ctx.config
    if cfg.model:  # a user's model: its file is the artifact (an absolute path joins the build dir as itself)
        path = Path(cfg.model).resolve()
        if not path.is_file():
            raise InputError(f"classifier.model: {cfg.model}: no such file. Give the path of a fastText .bin.")
        return {"artifact": str(path), "fingerprint": fingerprint(path), "note": f"model {path.name}"}
    model.check_binding()
    folder = ctx.folder / "_classifier"
    training_set, out = folder / "train.txt", folder / "model.bin"
    raw = [(name, ctx.source_of(name), path) for name, path in steps.entering_documents(ctx.build_dir, ctx.inputs)]
    positive = cfg.positive_source
    reference = [] if positive else list(perplexity.reference_files(ctx.build_config.quality.perplexity).values())
    parts = [f"{name}:{source}:{fingerprint(path)}" for name, source, path in raw]
    parts += [fingerprint(path) for path in reference] + [ctx.config_hash]

    def step() -> dict:
        positives = _Sample(cfg.max_per_class, f"{ctx.seed}:classifier-positives")
        if positive:
            documents = (doc for name, source, path in raw if source == positive for doc in _documents(path, name))
        else:
            documents = _reference_lines(ctx.build_config)
        for key, text in documents:
            for example in model.examples(key, text, cfg.unit):
                positives.offer(*example)
        chosen = [text for _, text in positives.items()]
        if not chosen:
            what = f"source {positive!r}" if positive else "the perplexity reference folder"
            raise InputError(f"classifier: no positives ({what}) to train on. Name another classifier.positive_source.")
        # As many negatives; the sample holds at most that many texts at a time.
        negatives = _Sample(len(chosen), f"{ctx.seed}:classifier-negatives")
        for name, source, path in raw:
            if source != positive:
                for key, text in _documents(path, name):
                    for example in model.examples(key, text, cfg.unit):
                        negatives.offer(*example)
        drawn = [text for _, text in negatives.items()]
        if not drawn:
            raise InputError(
                "classifier: no negatives (documents of the other sources) to train on. "
                "Name another classifier.positive_source."
            )
        counts = model.write_training_set(chosen, drawn, cfg.positive_label, training_set, ctx.seed)
        model.train(training_set, cfg, ctx.seed, out)
        return {
            "artifact": ctx.artifact(out),
            "training_set": ctx.artifact(training_set),
            "training_bytes": training_set.stat().st_size,
            "model_bytes": out.stat().st_size,
            **counts,
            "note": f"{counts['positives']:,} positives, {counts['negatives']:,} negatives",
        }

    return ctx.once("classifier_model", combined_fingerprint(parts), [training_set, out], step)


def run_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Score every row; remove the ones the cut rejects as classifier_low."""
    cfg: ClassifierConfig = ctx.config
    scorer = model.scorer(ctx.artifacts["classifier_model"], cfg.positive_label)
    scores = model.document_scores(scorer, table.column("text").to_pylist(), cfg.unit)
    if cfg.mode == "threshold":
        keep = scores >= cfg.threshold
    else:
        seed = f"{ctx.seed}:classifier-pareto"
        uniforms = np.array([hash_unit(doc_id, seed) for doc_id in table.column("id").to_pylist()])
        keep = model.pareto_keep(uniforms, scores, cfg.pareto_alpha)
    index = table.schema.get_field_index(SCORE)
    column = pa.array(scores, pa.float32())
    table = table.set_column(index, SCORE, column) if index >= 0 else table.append_column(SCORE, column)
    return split_by_reason(table, [None if k else "classifier_low" for k in keep.tolist()], ctx.stage or "classifier")


# ----------------------------------------------------------------------------- report


def report(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """The score distribution per source (kept and removed rows), the cut, and the model."""
    entry = manifest.get("stages", {}).get("classifier")
    if entry is None or "docs_in" not in entry:
        return None
    paths = shard_stats.stage_files(build_dir, "classifier") + shard_stats.stage_files(
        build_dir, "classifier", removed=True
    )
    table = shard_stats.read_columns(paths, [SCORE, "source", "reason"])
    if table is None or SCORE not in table.column_names:
        return None
    section = ClassifierConfig.model_validate(config.get("classifier", {}))
    sources = table.column("source").to_pylist() if "source" in table.column_names else ["input"] * table.num_rows
    scores = table.column(SCORE).to_numpy(zero_copy_only=False)
    removed = np.array([r == "classifier_low" for r in table.column("reason").to_pylist()])
    edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    rows = []
    for source in dict.fromkeys(sources):
        mine = np.array([s == source for s in sources])
        values = scores[mine & ~np.isnan(scores)]
        p10, median, p90 = np.percentile(values, [10, 50, 90]).tolist() if values.size else (None,) * 3
        rows.append(
            {
                "source": source,
                "documents": int(mine.sum()),
                "removed": int((mine & removed).sum()),
                "mean": float(values.mean()) if values.size else None,
                "p10": p10,
                "median": median,
                "p90": p90,
                "histogram": np.histogram(values, bins=edges)[0].tolist(),
            }
        )
    trained = entry.get("build_steps", {}).get("classifier_model", {})
    return {
        "model": section.model or trained.get("artifact"),
        "positive_label": section.positive_label,
        "positives": trained.get("positives"),
        "negatives": trained.get("negatives"),
        "cut": {"mode": section.mode, "threshold": section.threshold, "pareto_alpha": section.pareto_alpha},
        "edges": edges.round(3).tolist(),
        "sources": rows,
    }

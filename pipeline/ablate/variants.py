"""Corpus variants of an ablation: which documents each one trains on.

A variant starts from a stage's documents (`VariantConfig` in pipeline/config.py):
- `raw`: the build's input as the first text stage read it (a web source's: the extract stage's
  output, since raw web is no text yet);
- `STAGE`: the documents a filter stage kept;
and may change them, each without rerunning a stage:
- `set`: settings of that stage; its decision is taken again from the columns it wrote (the
  stage's declared `redecide`, e.g. quality's: pipeline/quality/redecide.py). `enabled: false`
  gives the stage's input: its documents without it;
- `restore`: reasons of that stage whose removed documents come back (a rule switched off; exact
  for a document that failed that rule only, since a stage names the first rule a document
  fails; a stage of one rule, such as a classifier's threshold, is exact);
- `where`: a condition `COLUMN OP NUMBER` on the columns the stages wrote (a tighter threshold, a
  score cut: `classifier_score >= 0.5`);
- `weights`: the sources' mixture weights instead of the build's (another mixture).
Stage names come from the registry: a stage a plugin adds (a classifier) has its variant too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import ValidationError

from pipeline.config import BuildConfig, SourceConfig, VariantConfig, load_config
from pipeline.errors import InputError
from pipeline.shard_split import planned_inputs
from pipeline.shards import InputShard, prepare_sources, read_input_shard, read_shard, with_provenance
from pipeline.sources import build_sources, merged
from pipeline.stage import Stage
from pipeline.stages import registry
from pipeline.steps import read_summary, stage_sources

ABLATIONS = "ablations"  # the build directory's folder of `corpus ablate`'s variants, runs and results
RAW = "raw"
COLUMNS = ("id", "text", "source", "lang")  # what the tokenizer reads of a document (lang when present)
OPERATORS = {
    "<=": pc.less_equal,
    ">=": pc.greater_equal,
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    ">": pc.greater,
}
CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*(\S.*?)\s*$")
OFF = {"enabled": False}


@dataclass
class Build:
    """A finished build as an ablation reads it: its folder, its recorded config (with any
    overrides) and manifest."""

    dir: Path
    config: BuildConfig
    manifest: dict

    @classmethod
    def open(cls, build_dir: Path, overrides: list[str] | None = None) -> Build:
        path = build_dir / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InputError(
                f"{path}: no readable build manifest. Pass a build directory made by `corpus build`."
            ) from None
        return cls(build_dir, load_config(None, overrides, recorded=manifest.get("config") or {}), manifest)

    @cached_property
    def sources(self) -> list[SourceConfig]:
        spec = None if self.config.sources else self.manifest.get("input")
        return build_sources(self.config, spec)

    @cached_property
    def inputs(self) -> list[InputShard]:
        """The build's input shards, planned as the build planned them (the plan depends on its
        worker count): needed only by the variants that read the input itself."""
        checked = prepare_sources([(s.name, s.input) for s in self.sources], self.dir / "input")
        workers = self.config.worker_count(self.manifest.get("workers", 0))
        return planned_inputs(checked, self.dir / "input", self.config.shards, workers)

    def summary(self, stage: Stage) -> dict | None:
        return read_summary(self.dir, stage)


def first_text_stage() -> Stage:
    """The first filter stage of documents (not of raw input): what it read is the `raw` variant."""
    return next(stage for stage in registry.filters() if not stage.raw_input)


def default_variants(build: Build) -> list[VariantConfig]:
    """`raw`, then every text stage that ran in the build, in build order."""
    ran = [s for s in registry.filters() if not s.raw_input and "docs_in" in (build.summary(s) or {})]
    return [VariantConfig(name=RAW, stage=RAW)] + [VariantConfig(name=s.name, stage=s.name) for s in ran]


def parse_variant(item: str) -> VariantConfig:
    """`NAME=STAGE[:KEY=VALUE,...]` as a variant: KEY is a setting of STAGE (dotted), `restore`
    (reasons joined by |), `where` (COLUMN OP NUMBER) or `weight.SOURCE`; values are YAML."""
    name, sep, spec = item.partition("=")
    stage, _, options = spec.partition(":")
    if not sep or not name or not stage:
        raise InputError(
            f"--variant {item}: expected NAME=STAGE[:KEY=VALUE,...], e.g. --variant words20=quality:gopher.min_words=20"
        )
    fields: dict[str, Any] = {"name": name, "stage": stage, "set": {}, "weights": {}}
    # Commas inside brackets belong to a YAML list or mapping (languages=[en, de]).
    for option in filter(None, (o.strip() for o in re.split(r",(?![^\[{]*[\]}])", options))):
        key, eq, raw = option.partition("=")
        if key == "where":  # the condition keeps its own "=" (quality_words >= 100, lang == en)
            fields["where"] = option.removeprefix("where=")
        elif not eq:
            raise InputError(f"--variant {item}: {option!r} is not KEY=VALUE.")
        elif key == "restore":
            fields["restore"] = raw.split("|")
        elif key.startswith("weight."):
            fields["weights"][key.removeprefix("weight.")] = yaml.safe_load(raw)
        else:
            fields["set"][key] = yaml.safe_load(raw)
    try:
        return VariantConfig.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"--variant {item}: {'.'.join(map(str, first['loc']))}: {first['msg']}.") from None


@dataclass(frozen=True)
class Part:
    """One shard of a variant: the file its documents come from (the stage's output shard, or the
    shard the stage read) and the stage's removed rows of it, when the variant reads them."""

    name: str
    source: str
    path: Path
    removed: Path | None = None
    provenance: tuple[str, str] | None = None  # (source, id prefix) of a build input shard

    @property
    def files(self) -> list[Path]:
        return [self.path] + ([self.removed] if self.removed else [])


def variant_stage(variant: VariantConfig) -> Stage:
    stage = first_text_stage() if variant.stage == RAW else registry.get(variant.stage)
    if not stage.filters:
        raise InputError(f"variant {variant.name}: {stage.name} writes no documents; name a filter stage or raw.")
    return stage


def reads_input(variant: VariantConfig) -> bool:
    """Whether the variant is a stage's input: raw, or a stage switched off."""
    return variant.stage == RAW or variant.set == OFF


def check(variant: VariantConfig, build: Build) -> None:
    """One-line errors for a variant that cannot be made from this build, before any training."""
    stage = variant_stage(variant)
    what = f"variant {variant.name}"
    if reads_input(variant) and (variant.restore or variant.where or (variant.set and variant.stage == RAW)):
        raise InputError(f"{what}: the input has no stage columns or reasons; restore and where need a stage.")
    if "enabled" in variant.set and variant.set != OFF:
        raise InputError(f"{what}: enabled: false stands alone (the stage's input); drop its other settings.")
    if variant.set and not reads_input(variant) and stage.redecide is None:
        raise InputError(
            f"{what}: the {stage.name} stage cannot decide again from its columns (it declares no redecide); "
            "use restore/where, or build a corpus with the setting and compare the builds."
        )
    if variant.set and not reads_input(variant):
        for source in build.sources:  # each setting valid in every source's section, before any work
            _changed(build.config.for_source(source.name).section(stage.name), variant, stage)
    if not reads_input(variant) and "docs_in" not in (build.summary(stage) or {}):
        raise InputError(f"{what}: the {stage.name} stage did not run in {build.dir}; run it first.")
    unknown = sorted(set(variant.weights) - {s.name for s in build.sources})
    if unknown:
        names = ", ".join(s.name for s in build.sources)
        raise InputError(f"{what}: weight of {unknown[0]!r}, which is none of the build's sources ({names}).")
    unknown = sorted(set(variant.restore) - _reasons(build, stage))
    if unknown:
        raise InputError(f"{what}: the {stage.name} stage removed nothing as {unknown[0]!r} in this build.")
    if variant.where:
        _condition(variant.where)


def _reasons(build: Build, stage: Stage) -> set[str]:
    return set((build.summary(stage) or {}).get("reasons", {}))


def parts(build: Build, variant: VariantConfig) -> list[Part]:
    """The shards of a variant, in the build's order."""
    stage = variant_stage(variant)
    if reads_input(variant):
        inputs = {shard.name: shard for shard in build.inputs}
        found = []
        for name, path in stage_sources(build.dir, stage, build.inputs):
            shard = inputs[name]
            provenance = (shard.source, shard.id_prefix) if path == shard.path else None
            found.append(Part(name, shard.source, path, provenance=provenance))
        return found
    folder = build.dir / stage.out
    reads_removed = bool(variant.set or variant.restore)
    return [
        Part(r["name"], r["source"], folder / f"{r['name']}.parquet", folder / "removed" / f"{r['name']}.parquet")
        if reads_removed
        else Part(r["name"], r["source"], folder / f"{r['name']}.parquet")
        for r in build.summary(stage)["shards"]
    ]


def documents(build: Build, variant: VariantConfig, part: Part) -> pa.Table:
    """The variant's documents of one shard: id, text, source (and lang when known)."""
    if part.provenance is not None:
        table = with_provenance(read_input_shard(part.path), *part.provenance)
    else:
        table = read_shard(part.path)
    if part.removed is not None:
        stage = variant_stage(variant)
        removed = read_shard(part.removed)
        if variant.set:
            before = build.config.for_source(part.source).section(stage.name)
            judged = pa.concat_tables([_with_reason(table), removed], promote_options="default")
            result = stage.redecide(judged, before, _changed(before, variant, stage))
            table, removed = result.kept, result.removed
        back = removed.filter(pc.is_in(removed["reason"], pa.array(variant.restore, pa.string())))
        table = pa.concat_tables([table, back.drop_columns(["stage", "reason"])], promote_options="default")
    if variant.where:
        column, test, value = _condition(variant.where)
        if column not in table.column_names:
            raise InputError(
                f"variant {variant.name}: where {variant.where!r}: {part.path} has no column {column!r} "
                f"(columns: {', '.join(table.column_names)})."
            )
        table = table.filter(test(table[column], value))
    return table.select([c for c in COLUMNS if c in table.column_names])


def _with_reason(kept: pa.Table) -> pa.Table:
    """Kept rows in the shape of removed ones: `stage` and `reason` null."""
    nulls = pa.nulls(kept.num_rows, pa.string())
    return kept.append_column("stage", nulls).append_column("reason", nulls)


def _changed(before: Any, variant: VariantConfig, stage: Stage) -> Any:
    """The stage's section for one source with the variant's dotted settings over it."""
    data = before.model_dump(mode="json")
    for key, value in variant.set.items():
        layer: Any = value
        for part in reversed(key.split(".")):
            layer = {part: layer}
        data = merged(data, layer)
    try:
        return stage.config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(map(str, first["loc"]))
        raise InputError(
            f"variant {variant.name}: {stage.name}.{key}: {first['msg']} (got {first.get('input')!r})."
        ) from None


def _condition(text: str) -> tuple[str, Any, Any]:
    """(column, the pyarrow comparison, the value) of `COLUMN OP VALUE`."""
    match = CONDITION.match(text)
    if match is None:
        raise InputError(
            f"where {text!r}: expected COLUMN OP VALUE with OP one of {' '.join(OPERATORS)}, e.g. quality_words >= 100."
        )
    column, op, value = match.groups()
    return column, OPERATORS[op], yaml.safe_load(value)


def shares(build: Build, variant: VariantConfig) -> dict[str, float]:
    """Each source's share of the variant's training tokens: the build's weights, or the variant's."""
    weights = {s.name: variant.weights.get(s.name, s.weight) for s in build.sources}
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def spec(variant: VariantConfig) -> str:
    """The variant as one line, for tables and the docs."""
    options = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in variant.set.items()]
    options += [f"restore={'|'.join(variant.restore)}"] * bool(variant.restore)
    options += [f"where={variant.where}"] * bool(variant.where)
    options += [f"weight.{k}={v:g}" for k, v in variant.weights.items()]
    return variant.stage + (":" + ",".join(options) if options else "")

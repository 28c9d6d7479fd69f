"""The stage contract: what a stage declares, what its steps receive and what they return.

A stage is declared once, as a `Stage` in the registry (pipeline/stages.py): its name (which is
also its config section's key and, by default, its output folder), its config model, its steps
in order, the removal reasons it may emit, and its part of the summary and the report. Flows,
job dispatch, the manifest, the CLI and the report all read the declaration; nothing else
lists stages.

Steps come in two kinds:
- a `ShardStep` runs once per shard, in a worker process: `run(table, ctx) -> StageResult`.
  A step that `writes="documents"` returns the kept rows and the removed rows with their
  reasons (`split_by_reason` makes both), and the job writes them as the stage's output; a
  step that `writes="files"` writes its own files (token shards, MinHash signatures) and lists
  them in `StageResult.files`. A step that `reads="raw"` gets no table: it reads its shard
  itself, streaming, from a `RawPart` (pipeline/shards.py: a file and a byte range of whole
  records), as the extract stage reads a WARC that must never sit in memory whole.
- a `BuildStep` runs once per build: `run(ctx) -> record`, skipped when an identical run
  finished (`BuildContext.once`). A record's `artifact` (a path in the build directory) is handed
  to the stage's later shard steps as `ctx.artifacts[step.name]`, and its fingerprint joins
  theirs; its `note` is shown beside the step's progress bar.

A stage's shard steps read the output of the nearest earlier stage with a documents step (or
the build input), so a new filter stage slots in anywhere by its place in the registry.

Raw input (WARC archives, HTML tables) is for the stage that declares it as its `raw_input`: that
stage runs only on a build input of that format (and is skipped for text shards), its `raw` steps
read the input, and the stages after it read its documents. Any other stage refuses raw input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from pipeline.shards import InputShard, write_json
from pipeline.sources import INPUT_SOURCE
from pipeline.tasks import LocalTasks

if TYPE_CHECKING:
    from pipeline.config import BuildConfig, SourceConfig

NO_FOLDER = Path()


@dataclass
class StageResult:
    """What a shard step returns: documents (kept, removed) or files it wrote, and counters."""

    kept: pa.Table | None = None
    removed: pa.Table | None = None  # kept's columns + `stage: string` + `reason: string`
    # Counters a stage wants in the manifest beyond kept/removed (e.g. PII entity totals);
    # numbers are summed over shards into the stage's `extra`.
    extra: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # what a `writes="files"` step wrote

    @property
    def reasons(self) -> dict[str, int]:
        if self.removed is None or self.removed.num_rows == 0:
            return {}
        counts = pc.value_counts(self.removed.column("reason")).to_pylist()
        return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


def split_by_reason(table: pa.Table, reasons: Sequence[str | None], stage: str) -> StageResult:
    """Keep rows whose reason is None; the others go to `removed` with `stage` and `reason`."""
    if len(reasons) != table.num_rows:
        raise ValueError(f"{stage}: {len(reasons)} decisions for {table.num_rows} rows")
    reason_array = pa.array(reasons, type=pa.string())
    keep_mask = pc.is_null(reason_array)
    kept = table.filter(keep_mask)
    removed = table.filter(pc.invert(keep_mask))
    removed_reasons = reason_array.filter(pc.invert(keep_mask))
    removed = removed.append_column("stage", pa.array([stage] * removed.num_rows, pa.string()))
    removed = removed.append_column("reason", removed_reasons)
    return StageResult(kept=kept, removed=removed)


@dataclass(frozen=True)
class ShardContext:
    """Everything a shard step may use besides the shard's table. Defaults make a step callable
    from a test with just its config: `run_shard(table, ShardContext(QualityConfig()))`."""

    config: BaseModel  # the stage's config section, as it applies to this shard's source
    stage: str = ""  # the stage's name: the `stage` column of removed rows
    shard: str = "part-00000"
    source: str = INPUT_SOURCE  # the build source the shard belongs to
    seed: int = 0
    artifacts: Mapping[str, Path] = field(default_factory=dict)  # build steps' outputs, by step name
    out_dir: Path = NO_FOLDER  # the stage's folder: where a `writes="files"` step writes
    # Other shard jobs run beside this one on the machine, so library thread pools
    # (tokenizers') stay on one thread. Not in the fingerprint: the same bytes either way.
    shares_cores: bool = False


@dataclass
class BuildContext:
    """What a build step receives: the build, its stage's config, and what came before it."""

    build_dir: Path
    stage: str
    folder: Path  # the stage's output folder; done records go to its `_done/`
    config: BaseModel  # the stage's config section, the build's own (not a source's)
    config_hash: str  # of that section and the seed: part of every fingerprint
    seed: int
    shards: list[tuple[str, Path]]  # (shard name, path) of the shards the stage reads
    build_config: BuildConfig  # the whole config: `for_source(name)` gives a source's sections
    inputs: list[InputShard] = field(default_factory=list)  # the build's input shards, with their sources
    sources: list[SourceConfig] = field(default_factory=list)  # the build's sources, in priority order
    records: dict[str, list[dict]] = field(default_factory=dict)  # earlier shard steps' records
    artifacts: dict[str, dict] = field(default_factory=dict)  # earlier build steps' records
    # (done, total) of a long step that runs in the flow's process (isolated=False).
    on_progress: Callable[[int, int], None] | None = None
    # Where a step split into tasks runs them (pipeline/tasks.py): a local pool, or the Dask cluster.
    tasks: Any = field(default_factory=LocalTasks)
    # The build's URL, when the step runs in a working copy of it and its tasks on the cluster
    # reach the build there (pipeline/remote_steps.py); "" when they share its folder.
    url: str = ""

    def source_of(self, shard: str) -> str:
        """The build source a shard belongs to."""
        return next((s.source for s in self.inputs if s.name == shard), INPUT_SOURCE)

    def artifact(self, path: Path) -> str:
        """How a record names a file it hands to later steps: relative to the build directory,
        so the record stays true when the build directory moves (a remote build's local copy)."""
        return path.relative_to(self.build_dir).as_posix()

    def shared(self, path: Path) -> str:
        """Where the step's tasks reach a file of the build: its path, or its URL."""
        return f"{self.url}/{self.artifact(path)}" if self.url else str(path)

    def once(self, name: str, fingerprint: str, outputs: list[Path], step: Callable[[], dict]) -> dict:
        """Run `step` unless a finished record `_done/<name>.json` with this fingerprint exists
        and its outputs are all there; returns the record (with `skipped`)."""
        record_path = self.folder / "_done" / f"{name}.json"
        if record_path.exists() and all(p.exists() for p in outputs):
            record = json.loads(record_path.read_text())
            if record.get("fingerprint") == fingerprint:
                return record | {"skipped": True}
        start = time.perf_counter()
        record = step() | {"fingerprint": fingerprint, "seconds": round(time.perf_counter() - start, 3)}
        write_json(record, record_path)
        return record | {"skipped": False}


@dataclass(frozen=True)
class Ref:
    """A function named "module:attribute", imported at its first call, so that the registry
    imports nothing heavy (presidio, torch) until a step of that stage runs. Pickles by name."""

    target: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(import_module(module), attribute)(*args, **kwargs)


def always(config: Any) -> bool:
    return True


def no_charts(numbers: Any, color: str) -> dict[str, bytes]:
    return {}


@dataclass(frozen=True)
class ShardStep:
    name: str  # job and progress key, e.g. "quality", "dedup_signatures", "encode"
    run: Callable[[Any, ShardContext], StageResult]  # (pa.Table, ctx), or (RawPart, ctx) with reads="raw"
    label: str = ""  # progress bar label; the name when empty
    writes: Literal["documents", "files"] = "documents"
    # "table": the job reads the shard (a checked text shard) and hands it over as a pa.Table;
    # "raw": the job hands over the shard's RawPart and the step reads it itself, streaming; its
    # documents are the part's (counted when the input was checked), which conservation holds it to.
    reads: Literal["table", "raw"] = "table"
    # When it runs at all, from the build so far (e.g. an earlier build step's record); it runs
    # when None. A step that does not run leaves no records.
    when: Callable[[BuildContext], bool] | None = None
    # Its work on a shard relative to other shards, from the shard's file and the stage's section
    # as it applies there: jobs start in decreasing cost (steps.longest_first). None: the file's size.
    cost: Callable[[Path, Any], float] | None = None


@dataclass(frozen=True)
class BuildStep:
    name: str  # done record, artifact and progress key, e.g. "reference_lm", "dedup_clusters"
    run: Callable[[BuildContext], dict]
    label: str = ""
    unit: str = "step"  # what its progress counts (a long step reports many through ctx.on_progress)
    # When it runs at all, from the stage's config (e.g. the reference LM only with perplexity on).
    when: Callable[[Any], bool] = always
    # In a worker process (its memory goes back when it ends), or in the flow's own process,
    # where it can report progress as it goes (pretraining).
    isolated: bool = True


@dataclass(frozen=True)
class ReportSection:
    """A section of the report: its numbers (in stats.json under `key`), charts and HTML."""

    key: str
    title: str
    collect: Callable[..., Any]  # (build_dir, manifest, config) -> numbers or None
    render: Callable[..., str]  # (stats, figures) -> HTML
    charts: Callable[..., dict[str, bytes]] = no_charts  # (its numbers, its stage's colour) -> {name: PNG}


@dataclass(frozen=True)
class Stage:
    name: str  # also its config section's key, its CLI name and its sub-flow's name
    config: type[BaseModel]  # the config section's model; it needs an `enabled` field
    steps: tuple[ShardStep | BuildStep, ...]
    description: str = ""  # one line: CLI help, sub-flow description, docs
    folder: str = ""  # its output folder in the build directory; the name when empty
    # Removal reasons it may emit; `*` matches any run of characters (`gopher_top_*_gram`).
    # A shard that emits another fails the build: a typo never reaches the manifest unseen.
    reasons: tuple[str, ...] = ()
    # The stage's manifest entry from its steps' records (default: documents in/kept/removed,
    # reasons and counters summed over the documents step's shards).
    summarise: Callable[[BuildContext], dict] | None = None
    # The CLI summary's columns for the stage, and a line below the table.
    headline: Callable[[dict], dict[str, str]] | None = None
    # Its row of the report funnel (default: documents left); None to leave it out.
    funnel: Callable[[dict], dict | None] | None = None
    report: tuple[ReportSection, ...] = ()
    color: str = "#6b7280"  # of its bars in the report's charts
    # The raw input format it turns into documents (shards.WEB for WARC/WET archives and HTML
    # tables; see shards.needs_extraction): it runs only when the build input is of that format,
    # reading it with `reads="raw"` steps. "" for a stage of documents.
    raw_input: str = ""
    # Its removal decision taken again from the columns it wrote, under other settings of its
    # section, for ablations (pipeline/ablate/): (its kept + removed rows of one shard, `reason`
    # null where kept; the section they were judged with; the changed one) -> StageResult. It
    # raises InputError for a setting its columns cannot decide. None: the stage cannot.
    redecide: Callable[[pa.Table, Any, Any], StageResult] | None = None
    # What its workers load before their first job, whatever the config: models, tables (no
    # arguments; they cache what they load). The fork server that workers start from calls them
    # once (flows/workers.py), so that every worker does not pay for them at once.
    warm: tuple[Ref, ...] = ()

    def applies_to(self, shard: InputShard) -> bool:
        """Whether it reads this input shard: a raw-input stage only the raw shards of its format
        (text shards go straight on), any other stage every shard."""
        return not self.raw_input or shard.raw == self.raw_input

    def applies(self, inputs: Sequence[InputShard]) -> bool:
        """Whether it has work on this build input at all."""
        return any(self.applies_to(shard) for shard in inputs)

    @property
    def out(self) -> str:
        return self.folder or self.name

    @property
    def summarised(self) -> bool:
        """Whether it leaves a manifest entry (every stage but the report, which reads them)."""
        return self.filters or self.summarise is not None

    @property
    def filters(self) -> bool:
        """Whether it writes documents (kept + removed), so that later stages read its output."""
        return any(isinstance(s, ShardStep) and s.writes == "documents" for s in self.steps)

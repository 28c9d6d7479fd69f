"""`corpus`: build a corpus, write its report, inspect a shard, sample from its model.

Exit codes: 0 done, 1 the build failed, 2 bad usage or bad input (one line saying what to do).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import manifest, remote
from pipeline.config import load_config
from pipeline.errors import BuildError, InputError
from pipeline.lock import build_lock
from pipeline.shard_split import planned_inputs
from pipeline.shards import prepare_sources
from pipeline.sources import build_sources, shares
from pipeline.stages import registry

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()  # results: summary tables, inspect output
err_console = Console(stderr=True)  # progress bars and errors


class RichProgress:
    """The flows' progress hook drawn as rich progress bars, one per stage step."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def start(self, key: str, total: int, unit: str, label: str) -> None:
        self.tasks[key] = self.progress.add_task(label, total=total, unit=unit, note="")

    def advance(self, key: str, amount: int = 1, completed: int | None = None, total: int | None = None) -> None:
        if key in self.tasks:
            if completed is None:
                self.progress.advance(self.tasks[key], amount)
            else:
                self.progress.update(self.tasks[key], completed=completed, total=total)

    def finish(self, key: str, note: str = "") -> None:
        if key in self.tasks:
            task = self.progress.tasks[self.tasks[key]]
            self.progress.update(self.tasks[key], completed=task.total, note=note)


def fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def parse_stages(stages: str | None) -> list[str]:
    if not stages:
        return registry.names()
    wanted = [s.strip() for s in stages.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in registry.names()]
    if unknown:
        fail(f"--stages: unknown stage {unknown[0]!r}; choose from {','.join(registry.names())}.", 2)
    return wanted


@app.command()
def build(
    input: str | None = typer.Option(
        None, "--input", "-i", help="Folder, glob or file of Parquet/JSONL shards: a one-source build."
    ),
    out: str = typer.Option(
        ..., "--out", "-o", help="Build directory or fsspec URL, e.g. s3://bucket/builds/x (created; reruns resume it)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config (docs/config.md)."),
    stages: str | None = typer.Option(None, help=f"Comma-separated subset of {','.join(registry.names())}."),
    workers: int = typer.Option(0, help="Worker processes for per-shard work (0: all cores)."),
    set_: list[str] = typer.Option([], "--set", help="Override one config key: section.key=value."),
    resume: bool = typer.Option(False, "--resume", help="Continue pretraining from model/ckpt.pt (pretrain.resume)."),
    dask_address: str | None = typer.Option(
        None, "--dask-address", help="Run per-shard work on this Dask scheduler (tcp://HOST:PORT)."
    ),
    source: list[str] = typer.Option(
        [], "--source", help="A source NAME=PATH[:WEIGHT] (repeat it; kind other; replaces the config's sources)."
    ),
) -> None:
    """Run a corpus build on the embedded Prefect API (or PREFECT_API_URL when set)."""
    set_ = [*set_, "pretrain.resume=true"] if resume else set_
    set_ = [*set_, f"dask_address={dask_address}"] if dask_address else set_
    try:
        set_ += [f"sources={json.dumps([parse_source(item) for item in source])}"] if source else []
        cfg = load_config(config, set_)  # imports its plugins, whose stages --stages may name
        sources = build_sources(cfg, input)
    except InputError as exc:
        fail(str(exc), 2)
    for warning in weight_warnings(sources):
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    wanted = parse_stages(stages)
    with ExitStack() as held:
        try:
            work = remote.working_dir(out)  # --out itself, or the local working copy of a URL
            held.enter_context(build_lock(work))  # before anything is written into --out
            # Fail fast, before any server starts (the flow finds the plan's shards written).
            checked = prepare_sources([(source.name, source.input) for source in sources], work / "input")
            planned_inputs(checked, work / "input", cfg.shards, cfg.worker_count(workers))
            remote.pull(out, work)  # a bucket that is missing or refuses us, too
        except InputError as exc:
            fail(str(exc), 2)
        # Prefect's own console lines would tear the progress bars; its logs still reach the API/UI.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        from flows import progress as flow_progress
        from flows.build import corpus_build

        columns = (
            TextColumn("{task.description:<26}"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[note]}"),
        )
        try:
            with Progress(*columns, console=err_console) as bars:
                flow_progress.install(RichProgress(bars))
                result = corpus_build(input, out, cfg.model_dump(mode="json"), wanted, workers)
        except InputError as exc:
            fail(str(exc), 2)
        except BuildError as exc:
            fail(str(exc), 1)
        except Exception as exc:  # unexpected: one line here, the traceback in the build folder
            log = work / "error.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (traceback: {log})", 1)
    print_summary(result, work, out)


def parse_source(item: str) -> dict:
    """--source NAME=PATH[:WEIGHT] as a config source (a PATH may hold ':' itself, as URLs do)."""
    name, sep, rest = item.partition("=")
    if not sep or not name or not rest:
        raise InputError(f"--source {item}: expected NAME=PATH[:WEIGHT], e.g. --source web=data/cc:0.6")
    path, _, weight = rest.rpartition(":")
    try:
        return {"name": name, "input": path, "weight": float(weight)}
    except ValueError:  # no weight, or a ':' of the path itself
        return {"name": name, "input": rest}


def weight_warnings(sources: list) -> list[str]:
    """Weights that do not sum to 1 are normalised; the user hears of it."""
    total = sum(source.weight for source in sources)
    given = any("weight" in source.model_fields_set for source in sources)  # equal shares need no word
    if len(sources) < 2 or not given or abs(total - 1) < 1e-9:
        return []
    got = ", ".join(f"{s.name} {s.weight:g}" for s in sources)
    become = ", ".join(f"{name} {share:.3f}" for name, share in shares(sources).items())
    return [f"source weights sum to {total:g} ({got}); normalised to shares {become}."]


def print_summary(result: dict, work: Path, out: str) -> None:
    """The stages that ran, each in its declared headline columns, then removals by reason."""
    ran = [(stage, result["stages"][stage.name]) for stage in registry if stage.name in result["stages"]]
    rows = [(stage.name, manifest.headline(stage, summary), summary) for stage, summary in ran]
    columns = list(dict.fromkeys(key for _, headline, _ in rows for key in headline if key != "detail"))
    table = Table(title="corpus build summary", title_justify="left")
    for column in ("stage", *columns, "seconds"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name, headline, summary in rows:
        table.add_row(name, *(headline.get(column, "") for column in columns), f"{summary['seconds']:.1f}")
    console.print(table)

    reasons = Table(title="removals by reason", title_justify="left")
    reasons.add_column("stage")
    reasons.add_column("reason")
    reasons.add_column("documents", justify="right")
    for name, _, summary in rows:
        for reason, count in summary.get("reasons", {}).items():
            reasons.add_row(name, reason, f"{count:,}")
    if reasons.row_count:
        console.print(reasons)
    for _, headline, _ in rows:
        if headline.get("detail"):
            console.print(headline["detail"])
    if (work / "report" / "report.html").exists():
        console.print(f"report: {remote.published(out, work, 'report/report.html')}")
    conservation = "ok" if result["conservation"]["ok"] else "FAILED"
    console.print(f"manifest: {remote.published(out, work, 'manifest.json')}  conservation: {conservation}")
    if remote.is_remote(out):
        console.print(f"local working copy: {work}")


@app.command()
def report(
    build_dir: str = typer.Argument(..., help="A build directory (or its fsspec URL) with a manifest.json."),
    compare: str | None = typer.Option(
        None, "--compare", help="Another build directory: its figures side by side, with deltas."
    ),
) -> None:
    """Write BUILD_DIR/report/report.html, stats.json and the charts from the build's outputs."""
    work, other = checkout(build_dir), compare and checkout(compare)
    for folder, given in ((work, build_dir), (other, compare)):
        if folder and not (folder / "manifest.json").exists():
            fail(f"{given}: no manifest.json. Pass a build directory made by `corpus build`.", 2)
    from pipeline.stats.report import write_report

    try:
        path = write_report(work, other or None)
        remote.push(build_dir, work)
    except InputError as exc:
        fail(str(exc), 2)
    except BuildError as exc:
        fail(str(exc), 1)
    where = remote.published(build_dir, work, path.relative_to(work).as_posix())
    console.print(f"report: {where} ({path.stat().st_size / 1e6:.1f} MB)")


def checkout(build_dir: str) -> Path:
    """A build directory to read: the folder itself, or the local copy of a URL, pulled first."""
    try:
        work = remote.working_dir(build_dir)
        remote.pull(build_dir, work)
    except InputError as exc:
        fail(str(exc), 2)
    return work


@app.command()
def inspect(
    shard: str = typer.Argument(..., help="A Parquet shard (path or fsspec URL)."),
    rows: int = typer.Option(3, help="How many rows to show."),
) -> None:
    """Show a shard's schema, row count and its first rows."""
    from pipeline import storage
    from pipeline.shards import read_shard

    try:
        # A URL's file is copied into the cache first (file:// is its local path).
        found = storage.localize(shard, remote.cache_root() / "inspect") if storage.is_url(shard) else shard
        paths = [found] if isinstance(found, str) else found
        if len(paths) != 1 or not Path(paths[0]).is_file():
            fail(f"{shard}: no such file. Pass a Parquet shard, e.g. sample_data/books/part-00000.parquet.", 2)
        table = read_shard(Path(paths[0]))
    except InputError as exc:
        fail(str(exc), 2)
    console.print(f"[bold]{shard}[/]: {table.num_rows:,} rows")
    console.print(str(table.schema))
    table = table.slice(0, rows)
    view = Table(show_lines=True)
    for name in table.column_names:
        view.add_column(name, overflow="fold", max_width=60 if name == "text" else 24)
    for row in table.to_pylist():
        view.add_row(*(_short(value) for value in row.values()))
    console.print(view)


@app.command()
def sample(
    build_dir: str = typer.Argument(
        ..., help="A build directory (or its fsspec URL) with tokenizer/ and model/ckpt.pt."
    ),
    prompt: str = typer.Option("", help="Text to continue (default: a new document from scratch)."),
    max_new_tokens: int = typer.Option(200, min=1, help="Tokens to generate (fewer if the model ends the document)."),
    temperature: float = typer.Option(0.8, min=0.01, help="Below 1: safer, more repetitive; above 1: wilder."),
    top_k: int = typer.Option(50, min=0, help="Sample among the k likeliest tokens only; 0: all."),
    seed: int = typer.Option(0, help="Same seed, same text."),
) -> None:
    """Continue PROMPT with the build's trained model."""
    from pipeline.train.sample import sample as generate

    try:
        text = generate(checkout(build_dir), prompt, max_new_tokens, temperature, top_k or None, seed)
    except InputError as exc:
        fail(str(exc), 2)
    console.print(text, markup=False, highlight=False)


@contextmanager
def api_unreachable_is_one_line() -> Iterator[None]:
    """A Prefect API that does not answer (not started yet, wrong URL) ends in one line, exit 1."""
    import httpx

    try:
        yield
    except httpx.TransportError as exc:
        url = os.environ.get("PREFECT_API_URL") or "the embedded Prefect API"
        fail(
            f"{url}: no answer ({type(exc).__name__}). Start the server (or wait for its health check) "
            "and check PREFECT_API_URL.",
            1,
        )


@app.command()
def serve(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config; its `service` section sets the schedule."
    ),
    set_: list[str] = typer.Option([], "--set", help="Override one config key: section.key=value."),
) -> None:
    """Serve the scheduled `corpus-build` deployment and the ad-hoc ones until interrupted."""
    try:
        cfg = load_config(config, set_)
    except InputError as exc:
        fail(str(exc), 2)
    from flows.serve import serve as serve_deployments

    with api_unreachable_is_one_line():
        serve_deployments(cfg)


@app.command("run-deployment")
def run_deployment(
    name: str = typer.Argument(..., help="corpus-build, build, a stage name, or FLOW/DEPLOYMENT."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A run parameter key=value (value in YAML: [quality, dedup])."
    ),
    watch: bool = typer.Option(False, "--watch", help="Wait for the run to end; exit 1 unless it completed."),
) -> None:
    """Start a run of a served deployment (see `corpus serve`)."""
    import yaml
    from prefect.exceptions import ObjectNotFound

    from flows.serve import start_run

    parameters = {}
    for item in param:
        if "=" not in item:
            fail(f"--param {item}: expected key=value, e.g. --param out=build/adhoc", 2)
        key, raw = item.split("=", 1)
        parameters[key.strip()] = yaml.safe_load(raw) if raw else ""
    try:
        with api_unreachable_is_one_line():
            run = start_run(name, parameters, watch)
    except InputError as exc:
        fail(str(exc), 2)
    except ObjectNotFound:
        fail(f"{name}: no such deployment on the API. Is `corpus serve` running against it?", 2)
    console.print(f"flow run {run.name} ({run.id}): {run.state.name if run.state else 'created'}")
    if watch and not (run.state and run.state.is_completed()):
        fail(
            f"flow run {run.name} ended {run.state.name if run.state else 'unknown'}: see its logs in the Prefect UI.",
            1,
        )


def _short(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted: rerun the same command to resume; finished shards are kept.")
        sys.exit(130)


if __name__ == "__main__":
    main()

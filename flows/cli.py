"""`corpus`: build a corpus, write its report, ablate it, inspect a shard, sample from its model.

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

from flows import workers as warm_workers
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

    def note(self, text: str) -> None:
        self.progress.console.print(f"[yellow]{text}", highlight=False, soft_wrap=True)


def progress_columns() -> tuple:
    return (
        TextColumn("{task.description:<26}"),
        BarColumn(bar_width=12),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[note]}"),
    )


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
    # Prefect's own console lines (and the libraries' warnings it passes on, in the workers and
    # their fork server too) would tear the progress bars; its logs still reach the API/UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    with ExitStack() as held:
        try:
            work = remote.working_dir(out)  # --out itself, or the local working copy of a URL
            held.enter_context(build_lock(work))  # before anything is written into --out
            # Fail fast, before any server starts (the flow finds the plan's shards written).
            checked = prepare_sources([(source.name, source.input) for source in sources], work / "input")
            # The workers' imports, on another core while this one plans and starts Prefect.
            warm_workers.start(s for s in registry if s.name in wanted and cfg.runs(s.name) and s.applies(checked))
            planned_inputs(checked, work / "input", cfg.shards, cfg.worker_count(workers))
            # A bucket that is missing or refuses us fails here too. With a cluster, the workers
            # read the outputs at the URL themselves: here, only what says what is done.
            remote.pull(out, work, only=remote.is_record if cfg.dask_address else None)
        except InputError as exc:
            fail(str(exc), 2)
        api_url = served_api()  # a server named that does not answer: one line, before any work
        from prefect.exceptions import TerminationSignal

        from flows import progress as flow_progress
        from flows.build import corpus_build

        try:
            with Progress(*progress_columns(), console=err_console) as bars:
                flow_progress.install(RichProgress(bars))
                state = corpus_build(input, out, cfg.model_dump(mode="json"), wanted, workers, return_state=True)
                result = state.result()  # the build's exception, if it failed
        except InputError as exc:
            fail(str(exc), 2)
        except BuildError as exc:
            fail(str(exc), 1)
        except TerminationSignal:  # SIGTERM: the worker processes are stopped already (flows/build.py)
            fail("terminated: rerun the same command to resume; finished shards are kept.", 143)
        except Exception as exc:  # unexpected: one line here, the traceback in the build folder
            log = work / "error.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (traceback: {log})", 1)
    # With a server the run stays there to look at; the embedded API is gone with this process.
    print_summary(result, work, out, api_url and run_url(state.state_details.flow_run_id))


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


def print_summary(result: dict, work: Path, out: str, url: str | None = None) -> None:
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
    if result.get("quarantined"):
        console.print(f"quarantined input files: {len(result['quarantined'])} (listed in the manifest)")
    if url:
        console.print(f"run: {url}")


def served_api() -> str | None:
    """The Prefect server's API URL when one is configured (PREFECT_API_URL), checked to answer;
    None for the embedded API."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return None
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        fail(
            f"PREFECT_API_URL={url}: no answer ({type(exc).__name__}). Start the server (prefect server start), "
            "fix the URL, or unset PREFECT_API_URL to build on the embedded API.",
            1,
        )
    return url


def run_url(run_id: object) -> str:
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=run_id) or ""


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


@app.command()
def ablate(
    build_dir: str = typer.Argument(..., help="A finished build directory (or its fsspec URL)."),
    variants: str | None = typer.Option(
        None,
        "--variants",
        help="Comma-separated variants to train (default: raw, every text stage, every defined one).",
    ),
    variant: list[str] = typer.Option(
        [], "--variant", help="Define a variant NAME=STAGE[:KEY=VALUE,...] (docs/ablations.md); repeat it."
    ),
    tokens: int | None = typer.Option(
        None, "--tokens", min=1, help="Training tokens per run (default: the build's pretraining budget)."
    ),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="Runs per variant, seeded seed, seed+1, ... (3)."),
    eval_path: str | None = typer.Option(
        None, "--eval", help="Held-out text to score (*.txt, Parquet, JSONL; default: the build's validation split)."
    ),
    preset: str | None = typer.Option(None, "--preset", help="Model preset tiny or small (default: the build's)."),
    workers: int = typer.Option(0, help="Runs at a time (0: one per core on CPU, one on a GPU)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override one key of the build's config, e.g. pretrain.objective=prefix_lm."
    ),
) -> None:
    """Train the compact model on variants of a build's corpus at an equal token budget and compare them."""
    from pipeline.ablate.run import ablate as run_ablation
    from pipeline.ablate.variants import ABLATIONS, parse_variant
    from pipeline.config import PRETRAIN_PRESETS

    if preset is not None and preset not in PRETRAIN_PRESETS:
        fail(f"--preset {preset}: choose from {', '.join(PRETRAIN_PRESETS)}.", 2)
    options = {"variants": variants and f"[{variants}]", "tokens": tokens, "seeds": seeds}
    overrides = [*set_, *(f"ablate.{key}={value}" for key, value in options.items() if value is not None)]
    if eval_path is not None:
        overrides.append(f"ablate.eval={json.dumps(eval_path)}")  # quoted: a path is a string to YAML
    work = checkout(build_dir)
    try:
        defined = [parse_variant(item) for item in variant]
        with build_lock(work), Progress(*progress_columns(), console=err_console) as bars:
            summary = run_ablation(work, overrides, defined, preset, workers, RichProgress(bars))
        remote.push(build_dir, work)
    except InputError as exc:
        fail(str(exc), 2)
    except BuildError as exc:
        fail(str(exc), 1)
    print_ablation(summary, work / ABLATIONS)
    if (work / "report" / "report.html").exists():  # the report shows the ablations too
        from pipeline.stats.report import write_report

        write_report(work)
        remote.push(build_dir, work)
        console.print(f"report: {remote.published(build_dir, work, 'report/report.html')}")


def print_ablation(summary: dict, folder: Path) -> None:
    """The variants' bits per byte with their seed spread, as a table with a bar per variant, then
    which differences exceed the spread."""
    rows = {name: summary["variants"][name] for name in summary["order"]}
    means = [v["bpb_mean"] for v in rows.values()]
    low, high = min(means), max(means)
    table = Table(title="corpus ablate: validation bits per byte (lower is better)", title_justify="left")
    for column in ("variant", "documents", "bits/byte", "± std", "vs raw", "vs baseline", "tokens/s", "MFU", ""):
        table.add_column(column, justify="left" if column in ("variant", "") else "right")
    for name, v in rows.items():
        width = 1 + round(9 * (v["bpb_mean"] - low) / (high - low)) if high > low else 1
        table.add_row(
            f"{name} [dim]{v['spec']}[/]" if v["spec"] != name else name,
            f"{v['documents']:,}",
            f"{v['bpb_mean']:.4f}",
            f"{v['bpb_std']:.4f}",
            _difference(v["vs_raw"]),
            _difference(v["vs_baseline"]),
            f"{v['tokens_per_s']:,.0f}" if v["tokens_per_s"] else "",
            f"{v['mfu']:.1%}" if v["mfu"] else "",
            "█" * width,
        )
    console.print(table)
    console.print(
        f"{len(summary['seeds'])} seeds x {summary['tokens']:,} training tokens a run ({summary['preset']} preset, "
        f"{summary['params']:,} parameters, {summary['objective']}, {summary['device']}), scored on "
        f"{summary['eval']['text']} ({summary['eval']['tokens']:,} tokens); {summary['seconds']:,.0f} s, load average "
        f"{summary['load_average']['start'][0]:.1f} -> {summary['load_average']['end'][0]:.1f}"
    )
    for name, v in rows.items():
        for key in ("vs_baseline", "vs_raw"):
            d = v[key]
            if d and not (key == "vs_raw" and v["vs_baseline"] and v["vs_baseline"]["to"] == "raw"):
                verdict = "exceeds" if d["exceeds_seed_spread"] else "is within"
                console.print(
                    f"  {name} - {d['to']}: {d['diff']:+.4f} bits/byte {verdict} the seed spread ({d['spread']:.4f})"
                )
    console.print(f"results: {folder / 'results.json'}  chart: {folder / 'bpb.png'}")


def _difference(d: dict | None) -> str:
    if d is None:
        return ""
    mark = "[bold]*[/]" if d["exceeds_seed_spread"] else " "
    return f"{d['diff']:+.4f}{mark}"


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
    from flows.serve import watched

    console.print(
        f"serving the corpus deployments (scheduled: {cfg.service.cron} over {watched(cfg)}); "
        "stop with Ctrl-C or SIGTERM: runs in flight are stopped, and a scheduled build resumes at the next start.",
        highlight=False,
        soft_wrap=True,
    )
    with api_unreachable_is_one_line():
        serve_deployments(cfg)
    console.print("stopped: no run of this serve is left running.")


@app.command("run-deployment")
def run_deployment(
    name: str = typer.Argument(..., help="corpus-build, build, a stage name, or FLOW/DEPLOYMENT."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A run parameter key=value (value in YAML: [quality, dedup])."
    ),
    watch: bool = typer.Option(False, "--watch", help="Wait for the run to end; exit 1 unless it completed."),
    start_timeout: float = typer.Option(
        120,
        "--start-timeout",
        min=1,
        help="With --watch: cancel the run and exit 1 if nothing starts it in this many seconds.",
    ),
) -> None:
    """Start a run of a served deployment (see `corpus serve`)."""
    import yaml

    parameters = {}
    for item in param:
        if "=" not in item:
            fail(f"--param {item}: expected key=value, e.g. --param out=build/adhoc", 2)
        key, raw = item.split("=", 1)
        parameters[key.strip()] = yaml.safe_load(raw) if raw else ""
    from flows import runs

    with api_unreachable_is_one_line():
        try:
            target = runs.deployment(name)
            runs.check_parameters(target, parameters)
            run = runs.start(target, parameters)
        except InputError as exc:
            fail(str(exc), 2)
        console.print(f"flow run {run.name} ({run.id}): {run.state_name or 'created'}")
        console.print(f"  {runs.run_url(run)}", highlight=False, soft_wrap=True)
        if not watch:
            return

        def warn(text: str) -> None:
            err_console.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)

        with err_console.status(f"{run.name}: {run.state_name}") as spinner:
            try:
                run = runs.watch(
                    run,
                    runs.is_served(target),
                    start_timeout,
                    lambda now: spinner.update(f"{now.name}: {now.state_name}"),
                    warn,
                )
            except TimeoutError as exc:
                fail(str(exc), 1)
    state = run.state
    said = f": {state.message}" if state and state.message and state.name != "Completed" else ""
    console.print(f"flow run {run.name} ({run.id}): {run.state_name}{said}", highlight=False)
    if not (state and state.is_completed()):
        fail(
            f"flow run {run.name} ended {run.state_name}: {state.message if state else 'no state'} ({runs.run_url(run)})",
            1,
        )


@app.command()
def status(
    path: Path | None = typer.Argument(
        None, help="A build directory, a folder of builds, or a service root (default: service.out of --config)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config whose service.out to look at."),
) -> None:
    """Builds under PATH: state, stages done, documents, quarantined files, last error."""
    from pipeline import incremental
    from pipeline import status as build_status

    if path is None:
        try:
            path = Path(load_config(config).service.out)
        except InputError as exc:
            fail(str(exc), 2)
    if not path.is_dir():
        fail(f"{path}: no such folder. Pass a build directory or a folder of builds.", 2)
    views = [build_status.describe(folder) for folder in build_status.builds_under(path)]
    # Lines, not a table: errors are long, and a narrow terminal would squeeze them away.
    console.print(
        f"{'build':<14} {'state':<12} {'since':<12} {'stages done':<34} {'docs in -> out':>18}",
        style="bold",
        soft_wrap=True,
    )
    for view in views:
        name = str(view.path.relative_to(path)) if view.path != path else view.path.name
        docs = f"{view.docs_in or 0:,} -> {view.docs_out:,}" if view.docs_out is not None else f"{view.docs_in or 0:,}"
        quarantined = f"  {len(view.quarantined)} quarantined" if view.quarantined else ""
        since = view.at[5:16].replace("T", " ")
        line = f"{name:<14} {view.state:<12} {since:<12} {','.join(view.stages) or '-':<34} {docs:>18}{quarantined}"
        console.print(line, highlight=False, soft_wrap=True)
        if view.note:
            console.print(f"    {view.note}", highlight=False, soft_wrap=True)
        for bad in view.quarantined:
            console.print(f"    quarantined: {bad['reason']}", highlight=False, soft_wrap=True)
    failure = path / incremental.FAILURE
    if failure.exists():
        last = json.loads(failure.read_text())
        console.print(f"last failed run here: {last['run']} at {last['at']}: {last['reason']}", highlight=False)
    states = [view.state for view in views]
    console.print(
        ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "no builds found", highlight=False
    )


@app.command("runs")
def list_runs(
    limit: int = typer.Option(20, min=1, help="How many runs, newest first."),
    state: list[str] = typer.Option([], "--state", help="Only runs in this state type (running, failed, ...)."),
    all_: bool = typer.Option(False, "--all", help="Sub-flow runs too (corpus_build in a scheduled run, stages)."),
) -> None:
    """Flow runs on the Prefect API (PREFECT_API_URL), newest first: name, flow, state, message."""
    from flows import runs

    with api_unreachable_is_one_line():
        try:
            found = runs.recent(limit, state, subflows=all_)
        except InputError as exc:
            fail(str(exc), 2)
    # Lines, not a table: the state messages are long, and a narrow terminal would squeeze them away.
    for run, flow_name in found:
        started = run.start_time.strftime("%m-%d %H:%M:%S") if run.start_time else "not started"
        line = f"{run.name:<26} {flow_name:<23} {run.state_name or '':<10} {started:<14} {run.total_run_time.total_seconds():>6.0f} s"
        console.print(line, highlight=False, soft_wrap=True)
        if run.state and run.state.message:
            console.print(f"    {run.state.message}", highlight=False, soft_wrap=True)
    console.print(f"{len(found)} run(s)" if found else "no runs found", highlight=False)


@app.command()
def cancel(run: str = typer.Argument(..., help="A flow run's name or id (`corpus runs` lists them).")) -> None:
    """Cancel a run started from a deployment: `corpus serve` stops its process, and a cancelled
    scheduled build is not resumed until a run asks (--param retry=true)."""
    from flows import runs

    with api_unreachable_is_one_line():
        try:
            named, root = runs.cancel(run)
        except InputError as exc:
            fail(str(exc), 2)
    of = f" (the root run of {named.name})" if named.id != root.id else ""
    console.print(f"cancelling flow run {root.name}{of}: `corpus serve` stops it within seconds.")


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

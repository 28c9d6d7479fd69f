"""The service left running, as a team would run it: a 20-minute soak of `corpus serve`.

Not a benchmark of speed: it checks that a schedule can be left alone. A Prefect server on
loopback (SQLite in a temporary PREFECT_HOME), `corpus serve` with a cron firing every minute over
a fresh incoming folder, and while it runs, on this timetable (minutes from the start):

     0     two shards of sample_data documents in the incoming folder
     2.5, 5, ..., 15   a new shard each time: 40 documents no earlier shard had
     5.5   a bad shard (not Parquet)                        -> quarantined, the rest built
     8     the incoming folder moved away (a lost mount), once no build runs
                                                            -> one Failed run, then Skipped runs
    10.5   ... and back (with the shard that came meanwhile) -> builds go on
    12.5   `corpus serve` stopped (SIGTERM) while a build's worker pool runs, started again a
           minute later                                     -> the build resumed
    15     the last new shard, and its build cancelled with `corpus cancel` while it runs
                                                            -> Skipped runs until
    16.5   `corpus run-deployment corpus-build --param retry=true`
    20     `corpus serve` stopped

Builds run quality and dedup (the fast settings of the service tests) and the test-only `nap`
stage (tests/service/nap_stage.py) sleeping 50 s a shard, so that builds outlast the one-minute
interval and runs overlap. At the end it lists every run of the schedule with its state and
message and checks: no run Failed but the lost folder's first, no run left Running, nothing
`corpus serve` started still running after it stopped (within a minute: it stops runs, never
waits for a build), every good shard built exactly once (or
in the build that the final stop interrupted, which the next start would resume) and the bad
one quarantined. Results: bench/results/service_soak.json and .md.

    .venv/bin/python -m bench.service_soak              # 20 minutes (+ start and stop)
    .venv/bin/python -m bench.service_soak --minutes 8  # a shorter timetable, scaled (not committed)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench import REPO, write_results
from pipeline.lock import is_held, owner_of

SHARD_DOCS = 40
NAP_S = 50
STOP_LIMIT_S = 60  # SIGKILL comes 30 s after SIGTERM; the rest is slack for 2 busy cores
MINUTES = 20.0


class Soak:
    def __init__(self, root: Path, minutes: float):
        self.root = root
        self.scale = minutes / MINUTES
        self.incoming = root / "incoming"
        self.away = root / "incoming.away"
        self.out = root / "scheduled"
        self.home = root / "prefect-home"
        self.start = time.monotonic()
        self.started_at = datetime.now(UTC)  # the same moment, to place the runs on one axis
        self.events: list[dict] = []
        self.shards = 0
        self.sample = pa.concat_tables(pq.read_table(p) for p in sorted((REPO / "sample_data").rglob("part-*.parquet")))
        self.serve: subprocess.Popen | None = None
        self.serves = 0
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.api = f"http://127.0.0.1:{self.port}/api"

    # --- the timetable -------------------------------------------------------------------
    def at(self, minute: float) -> None:
        """Wait until `minute` (scaled) of the soak."""
        wait = self.start + minute * 60 * self.scale - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def note(self, what: str) -> None:
        minute = (time.monotonic() - self.start) / 60
        self.events.append({"minute": round(minute, 2), "event": what})
        print(f"[{minute:5.1f} min] {what}", flush=True)

    def new_shard(self) -> None:
        rows = self.sample.slice(self.shards * SHARD_DOCS, SHARD_DOCS)
        folder = self.incoming if self.incoming.exists() else self.away  # it arrives when the mount is back
        pq.write_table(rows, folder / f"part-{self.shards:05d}.parquet")
        self.shards += 1
        self.note(f"new shard part-{self.shards - 1:05d}.parquet ({rows.num_rows} documents)")

    def bad_shard(self) -> None:
        (self.incoming / "bad-00000.parquet").write_bytes(b"PAR1 this is not a Parquet file")
        self.note("bad shard bad-00000.parquet (not Parquet)")

    def building(self, timeout_s: float = 240) -> str | None:
        """Wait until a scheduled build's worker pool runs; the run holding the output's lock."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            builds = sorted(self.out.glob("build-*"))
            under = psutil.Process(self.serve.pid).children(recursive=True)
            pool = any("multiprocessing.spawn" in " ".join(p.cmdline()) for p in under if p.is_running())
            if builds and is_held(builds[-1]) and is_held(self.out) and pool:
                return owner_of(self.out).get("run")
            time.sleep(1)
        return None

    def idle(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while is_held(self.out) and time.monotonic() < deadline:
            time.sleep(1)

    # --- processes -----------------------------------------------------------------------
    def env(self) -> dict:
        return dict(
            os.environ, PREFECT_API_URL=self.api, PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false"
        )

    def start_server(self) -> subprocess.Popen:
        env = self.env()
        env.pop("PREFECT_API_URL")
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.root / "server.log", "w") as log:  # the child keeps its own descriptor
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not _answers(f"{self.api}/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Prefect server did not come up: see {self.root / 'server.log'}")
            time.sleep(1)
        return server

    def start_serve(self) -> None:
        self.serves += 1
        config = self.root / "service.yaml"
        with open(self.root / f"serve-{self.serves}.log", "w") as log:
            self.serve = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        self.note(f"corpus serve started (pid {self.serve.pid})")

    def stop_serve(self) -> dict:
        """SIGTERM to `corpus serve`; what it left running (processes with this API in their
        environment: run processes, worker pools)."""
        started = [p for p in psutil.Process(self.serve.pid).children(recursive=True)]
        begin = time.monotonic()
        self.serve.send_signal(signal.SIGTERM)
        code = self.serve.wait(timeout=180)
        seconds = time.monotonic() - begin
        time.sleep(2)
        left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] + self.strays()
        outcome = {
            "exit_code": code,
            "seconds": round(seconds, 1),
            "processes_before": len(started),
            "left_running": len({p.pid for p in left}),
        }
        self.note(
            f"corpus serve stopped: exit {code} in {seconds:.1f} s; {len(started)} processes under it before, {outcome['left_running']} left running"
        )
        return outcome

    def strays(self) -> list[psutil.Process]:
        """Any process but the server whose environment points at this soak's API."""
        found = []
        for process in psutil.process_iter(["pid"]):
            try:
                ours = process.environ().get("PREFECT_API_URL") == self.api
                if ours and process.pid != os.getpid() and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def corpus(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=600,
        )

    # --- reading the outcome -------------------------------------------------------------
    def post(self, path: str, body: dict) -> list:
        request = urllib.request.Request(
            f"{self.api}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def runs(self) -> list[dict]:
        """Every run of the scheduled flow that was due by now, oldest first."""
        now = datetime.now(UTC).isoformat()
        body = {
            "flows": {"name": {"any_": ["corpus_scheduled_build"]}},
            "flow_runs": {"expected_start_time": {"before_": now}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 200,
        }
        return self.post("/flow_runs/filter", body)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def soak(root: Path, minutes: float) -> dict:
    s = Soak(root, minutes)
    s.incoming.mkdir(parents=True)
    (root / "service.yaml").write_text(
        "plugins: [tests.service.nap_stage]\nworkers: 2\n"
        "quality: {lingua: {enabled: false}, perplexity: {enabled: false}}\n"
        f"nap: {{seconds: {NAP_S}}}\n"
        f"service: {{cron: '* * * * *', input: {s.incoming}, out: {s.out}, stages: [quality, dedup, nap]}}\n"
    )
    load_before = os.getloadavg()
    server = s.start_server()
    s.start, s.started_at = time.monotonic(), datetime.now(UTC)
    stops = []
    try:
        s.new_shard()
        s.new_shard()
        s.start_serve()
        timetable = [(2.5 * k, s.new_shard) for k in range(1, 7)]  # the last at 15
        timetable += [(5.5, s.bad_shard), (8.0, "folder away"), (10.5, "folder back"), (12.5, "restart")]
        timetable += [(15.0, "cancel"), (16.5, "retry")]
        for minute, event in sorted(timetable, key=lambda e: e[0]):
            s.at(minute)
            if event == "folder away":
                s.idle()
                s.incoming.rename(s.away)
                s.note("incoming folder moved away (a lost mount)")
            elif event == "folder back":
                s.away.rename(s.incoming)
                s.note("incoming folder back")
            elif event == "restart":
                run = s.building()
                s.note(f"stopping corpus serve while run {run} builds")
                stops.append(s.stop_serve())
                time.sleep(60 * s.scale)
                s.start_serve()
            elif event == "cancel":
                run = s.building()
                done = s.corpus("cancel", run or "?")
                s.note(f"corpus cancel {run}: {(done.stdout + done.stderr).strip()}")
            elif event == "retry":
                done = s.corpus("run-deployment", "corpus-build", "--param", "retry=true")
                s.note(
                    f"corpus run-deployment corpus-build --param retry=true: {done.stdout.splitlines()[0] if done.stdout else done.stderr.strip()}"
                )
            else:
                event()
        s.at(MINUTES)
        stops.append(s.stop_serve())
        status = s.corpus("status", str(s.out)).stdout
        runs = s.runs()
    finally:
        if s.serve is not None and s.serve.poll() is None:  # the soak itself failed: stop it as a team would
            s.serve.send_signal(signal.SIGTERM)
            s.serve.wait(timeout=180)
        server.terminate()
        server.wait(timeout=60)
    return summarise(s, runs, stops, status, load_before)


def summarise(s: Soak, runs: list[dict], stops: list[dict], status: str, load_before: tuple) -> dict:
    firings = []
    for run in runs:
        state = run["state"] or {}
        firings.append(
            {
                "run": run["name"],
                "scheduled": "cron" if run["auto_scheduled"] else "by hand",
                "minute": round(
                    (datetime.fromisoformat(run["expected_start_time"]) - s.started_at).total_seconds() / 60, 1
                ),
                "state": state.get("name", ""),
                "type": state.get("type", ""),
                "seconds": round(run["total_run_time"], 1),
                "message": (state.get("message") or "").replace(str(s.root) + "/", ""),
            }
        )
    failed = [f for f in firings if f["type"] == "FAILED"]
    # The lost input folder is an operator's fault, not bad data: its first run fails loudly (an
    # alert), the runs after it that meet the same fault end Skipped. Any other Failed run is a bug.
    lost = [f for f in failed if "incoming: no such file or folder" in f["message"]]
    builds = []
    for build in sorted(s.out.glob("build-*")):
        manifest = json.loads((build / "manifest.json").read_text()) if (build / "manifest.json").exists() else {}
        plan = json.loads((build / "scheduled.json").read_text())
        builds.append(
            {
                "build": build.name,
                "finished": plan["finished"],
                "inputs": [Path(e["path"]).name for e in plan["inputs"]],
                "quarantined": [Path(q["path"]).name for q in manifest.get("quarantined", [])],
                "docs_in": sum(x["docs"] for x in manifest.get("input_shards", [])),
                "dedup_removed": manifest.get("stages", {}).get("dedup", {}).get("reasons", {}),
            }
        )
    built = Counter(name for b in builds if b["finished"] for name in b["inputs"] if name not in b["quarantined"])
    # A build the final stop interrupted is resumed by the next start (as the restart shows).
    last = builds[-1] if builds and not builds[-1]["finished"] else {"inputs": []}
    good = {f"part-{i:05d}.parquet" for i in range(s.shards)}
    checks = {
        "failed_runs": len(failed),
        "failed_runs_for_the_lost_input_folder": len(lost),  # expected: 1
        "failed_runs_for_anything_else": len(failed) - len(lost),  # expected: 0
        "runs_left_running": sum(f["type"] in ("RUNNING", "PENDING", "CANCELLING") for f in firings),
        "processes_left_after_stops": [stop["left_running"] for stop in stops],
        # Stopping stops the runs in flight (SIGKILL after 30 s): it never waits for a build to end.
        "serve_stop_seconds": [stop["seconds"] for stop in stops],
        "good_shards": len(good),
        "good_shards_built_once": sum(built.get(name) == 1 for name in good),
        "good_shards_built_twice": sum((built.get(name) or 0) > 1 for name in good),
        "good_shards_in_the_build_the_final_stop_interrupted": sum(name in last["inputs"] for name in good),
        "bad_shard_quarantined": any("bad-00000.parquet" in b["quarantined"] for b in builds),
    }
    checks["ok"] = (
        checks["failed_runs_for_the_lost_input_folder"] == 1
        and not checks["failed_runs_for_anything_else"]
        and not checks["runs_left_running"]
        and not any(checks["processes_left_after_stops"])
        and max(checks["serve_stop_seconds"], default=0) <= STOP_LIMIT_S
        and not checks["good_shards_built_twice"]
        and checks["good_shards_built_once"] + checks["good_shards_in_the_build_the_final_stop_interrupted"]
        == len(good)
        and checks["bad_shard_quarantined"]
    )
    return {
        "minutes": MINUTES * s.scale,
        "cron": "* * * * *",
        "nap_s_per_shard": NAP_S,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "checks": checks,
        "states": dict(Counter(f["state"] for f in firings)),
        "events": s.events,
        "firings": firings,
        "builds": builds,
        "serve_stops": stops,
        "corpus_status": status.replace(str(s.root) + "/", ""),
    }


def markdown(result: dict) -> str:
    checks = result["checks"]
    lines = [
        "# Service soak",
        "",
        f"`corpus serve` with a cron every minute for {result['minutes']:.0f} minutes ([bench/service_soak.py](../service_soak.py):",
        "what it does and checks); builds run quality, dedup and a 50 s-per-shard nap so that they outlast the interval.",
        f"Load average before/after: {result['load_average_before']} / {result['load_average_after']} (2 shared cores).",
        "",
        f"**Checks: {'all hold' if checks['ok'] else 'FAILED'}.** What each check expects, and what it found:",
        "",
        f"- the lost input folder fails its first run loudly, once (the runs after it that meet the same fault end "
        f"Skipped): expected 1 Failed run for it, found {checks['failed_runs_for_the_lost_input_folder']};",
        f"- no other run Failed: found {checks['failed_runs_for_anything_else']};",
        f"- no run left Running, Pending or Cancelling: found {checks['runs_left_running']};",
        "- nothing `corpus serve` started still running after each stop: found "
        f"{checks['processes_left_after_stops']} processes;",
        f"- each stop of `corpus serve` ends its runs, not waits for them: within {STOP_LIMIT_S} s, took "
        f"{checks['serve_stop_seconds']} s;",
        f"- every good shard built exactly once, or in the build the final stop interrupted (which the next start "
        f"resumes): {checks['good_shards_built_once']} + {checks['good_shards_in_the_build_the_final_stop_interrupted']} "
        f"of {checks['good_shards']}; built twice: {checks['good_shards_built_twice']};",
        f"- the bad shard quarantined, the rest of its build built: {checks['bad_shard_quarantined']}.",
        "",
        "States of all runs: " + ", ".join(f"{n} {state}" for state, n in sorted(result["states"].items())),
        "",
        "## What happened (minutes from the start)",
        "",
        *(f"- {e['minute']:.1f}: {e['event']}" for e in result["events"]),
        "",
        "## Every run of the schedule",
        "",
        "Minutes from the same start as above (when the run was due); `by hand`: the retry.",
        "",
        "| minute | run | by | state | s | message |",
        "|---:|---|---|---|---:|---|",
        *(
            f"| {f['minute']:.1f} | {f['run']} | {f['scheduled']} | {f['state']} | {f['seconds']:.0f} | {f['message'].replace('|', '/')} |"
            for f in result["firings"]
        ),
        "",
        "## Builds",
        "",
        "| build | finished | inputs | quarantined | docs in | dedup removed |",
        "|---|---|---|---|---:|---|",
        *(
            f"| {b['build']} | {b['finished']} | {', '.join(b['inputs'])} | {', '.join(b['quarantined'])} | {b['docs_in']} | "
            f"{', '.join(f'{k} {v}' for k, v in b['dedup_removed'].items())} |"
            for b in result["builds"]
        ),
        "",
        "## `corpus status` at the end",
        "",
        "```",
        result["corpus_status"].rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=MINUTES)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="corpus-soak-"))
    try:
        result = soak(root, args.minutes)
    finally:
        print(f"logs: {root}")
    if args.minutes == MINUTES:
        write_results("service_soak", result, markdown(result))
    else:
        print(markdown(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["checks"]["ok"] else 1)

"""The whole quality stage against datatrove's language filter + four-filter chain, on held-out
multilingual web text, side by side in one run.

    .venv/bin/python -m bench.quality_stage_vs_datatrove            # ~6 min on 2 busy cores
    PYTHONPATH=/path/to/older/tree .venv/bin/python -m bench.quality_stage_vs_datatrove --before

Documents (`documents()`): the 449 real web pages of ../shared/data/web/trafilatura_dev.jsonl.gz
(their naive WET-like `text`: boilerplate included; mostly German and English, some in 9 other
languages) and the Universal Declaration of Human Rights paragraphs that sample_data/ does not
contain, in runs of 4-8 consecutive paragraphs of one declaration (hundreds of languages and
scripts); none of it is in sample_data/.

Ours: `run_shard` (language ID with fastText + lingua, keyword filter, Gopher quality and
repetition, C4, FineWeb, perplexity, Arrow columns) with C4 and FineWeb on (off by default: they
are for web pages), models loaded and warmed by one untimed pass; also with
`lingua.skip_when_removed_anyway` and with the stock defaults (C4 and FineWeb off). Theirs:
datatrove 0.10.1's `LanguageFilter` (fastText lid.176, the same keep-list, threshold 0.65) ->
`GopherQualityFilter` -> `GopherRepetitionFilter` -> `C4QualityFilter` -> `FineWebQualityFilter`,
defaults, `filter()` called directly (bench/_datatrove_chain.py in the datatrove venv, after its
own warm-up pass). CPU seconds of the calls (`time.process_time`); rounds interleave the sides,
and each round's ratio (datatrove CPU / ours) is a same-run ratio: the median round is reported.

`--before` runs the variants that the `pipeline` package on the path knows (put an older tree
first on PYTHONPATH) and writes quality_stage_vs_datatrove_before.{json,md}.
Needs ../shared/data/{web/trafilatura_dev.jsonl.gz,langid/udhr_paragraphs_dev.jsonl} and the
datatrove venv (`make bench-envs`); skips without them.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from bench import DATATROVE_PYTHON, REPO, RESULTS_DIR, SHARED_DATA, needs_data, needs_datatrove, skipping, write_results

WEB = SHARED_DATA / "web" / "trafilatura_dev.jsonl.gz"
UDHR = SHARED_DATA / "langid" / "udhr_paragraphs_dev.jsonl"
ROUNDS = 3
VARIANTS = {  # name -> config sections over the defaults
    "C4 + FineWeb on (the four families)": {"c4": {"enabled": True}, "fineweb": {"enabled": True}},
    "C4 + FineWeb on, lingua.skip_when_removed_anyway": {
        "c4": {"enabled": True},
        "fineweb": {"enabled": True},
        "lingua": {"skip_when_removed_anyway": True},
    },
    "stock defaults (C4, FineWeb off)": {},
}


def documents() -> list[dict]:
    """Web pages, then held-out UDHR runs (see the module docstring), in a fixed order."""
    with gzip.open(WEB, "rt", encoding="utf-8") as f:
        docs = [{"id": f"web-{i:03d}", "text": json.loads(line)["text"]} for i, line in enumerate(f)]
    seen = {
        paragraph.strip()
        for path in sorted((REPO / "sample_data").rglob("part-*.parquet"))
        for text in pq.read_table(path, columns=["text"]).column("text").to_pylist()
        for paragraph in text.split("\n\n")
    }
    declarations: dict[str, list[str]] = {}
    with UDHR.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            declarations.setdefault(row["code"], []).append(row["text"])
    for code, paragraphs in declarations.items():
        run: list[str] = []
        for paragraph in [*paragraphs, None]:  # None ends the last run
            if paragraph is not None and paragraph.strip() not in seen:
                run.append(paragraph)
                if len(run) < 8:
                    continue
            if len(run) >= 4:
                docs.append({"id": f"udhr-{code}-{len(docs):04d}", "text": "\n\n".join(run)})
            run = []
    return docs


def _configs() -> dict:
    """The variants this `pipeline` knows (an older tree lacks the newer settings)."""
    from pipeline.config import QualityConfig

    configs = {}
    for name, sections in VARIANTS.items():
        try:
            configs[name] = QualityConfig(**sections)
        except ValidationError:
            print(f"note: {name}: not a setting of this pipeline, left out")
    return configs


def run_datatrove(path: Path, out: Path, languages: list[str], hf_home: Path) -> dict:
    cmd = [str(DATATROVE_PYTHON), str(REPO / "bench" / "_datatrove_chain.py"), str(path), str(out)]
    cmd.append("languages=" + ",".join(languages))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ | {"HF_HOME": str(hf_home)})
    if proc.returncode != 0:
        raise SystemExit(f"error: datatrove run failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    totals = json.loads(proc.stdout.strip().splitlines()[-1])
    with out.open(encoding="utf-8") as f:
        totals["kept"] = sum(json.loads(line)["kept"] for line in f)
    return totals


def _lid_for_datatrove(hf_home: Path) -> None:
    """lid.176 where datatrove's LanguageFilter looks for it, so that it downloads nothing: the
    compressed model our stage uses (same labels), marked complete (../shared/notes/environment.md)."""
    from pipeline.quality.langid import model_path

    folder = hf_home / "assets" / "datatrove" / "lid" / "ft176"
    folder.mkdir(parents=True)
    name = "https:__dl.fbaipublicfiles.com_fasttext_supervised-models_lid.176.bin"
    shutil.copyfile(model_path(), folder / name)
    (folder / f"{name}.completed").touch()


def main(before: bool = False) -> dict:
    needs_data(WEB, UDHR)
    needs_datatrove()
    from pipeline.quality.stage import run_shard
    from pipeline.stage import ShardContext

    docs = documents()
    table = pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]})
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    configs = _configs()
    languages = next(iter(configs.values())).languages
    for cfg in configs.values():  # loads fastText, lingua's models of these languages, the perplexity model
        run_shard(table, ShardContext(cfg, stage="quality"))
    results: dict = {
        "documents": f"{len(docs)} documents, {mb:.2f} MB: {sum(d['id'].startswith('web') for d in docs)} web pages "
        f"and {sum(d['id'].startswith('udhr') for d in docs)} held-out UDHR runs",
        "pipeline": str(Path(sys.modules["pipeline"].__file__).parent),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "rounds": ROUNDS,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    rounds = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        _lid_for_datatrove(tmp / "hf")
        path = tmp / "documents.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps(doc) + "\n")
        for _ in range(ROUNDS):
            theirs = run_datatrove(path, tmp / "datatrove.jsonl", languages, tmp / "hf")
            row = {"datatrove": {"cpu_s": round(theirs["cpu_s"], 3), "kept": theirs["kept"]}}
            for name, cfg in configs.items():
                start = time.process_time()
                result = run_shard(table, ShardContext(cfg, stage="quality"))
                seconds = time.process_time() - start
                row[name] = {"cpu_s": round(seconds, 3), "kept": result.kept.num_rows}
            row["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            rounds.append(row)
            print(json.dumps(row), flush=True)
    results["datatrove_version"] = theirs["version"]
    results["rounds_cpu"] = rounds
    results["datatrove_mb_per_cpu_s"] = round(mb / statistics.median(r["datatrove"]["cpu_s"] for r in rounds), 3)
    results["variants"] = {
        name: {
            "mb_per_cpu_s": round(mb / statistics.median(r[name]["cpu_s"] for r in rounds), 3),
            "ratio_median": statistics.median(round(r["datatrove"]["cpu_s"] / r[name]["cpu_s"], 2) for r in rounds),
            "ratio_per_round": [round(r["datatrove"]["cpu_s"] / r[name]["cpu_s"], 2) for r in rounds],
            "kept": rounds[0][name]["kept"],
        }
        for name in configs
    }
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    name = "quality_stage_vs_datatrove" + ("_before" if before else "")
    write_results(name, results, markdown(results))
    return results


def markdown(results: dict) -> str:
    lines = [
        "# Whole quality stage vs datatrove's language filter + four filters",
        "",
        f"{results['documents']} (bench/quality_stage_vs_datatrove.py). Machine: {results['machine']}; "
        f"load average {results['loadavg_start']} -> {results['loadavg_end']}. datatrove {results['datatrove_version']}. "
        f"Pipeline: `{results['pipeline']}`.",
        "",
        f"CPU seconds of the calls, {results['rounds']} interleaved rounds; ratio = datatrove CPU / ours in the "
        "same round (median round, and every round).",
        "",
        "| ours | MB/cpu-s | datatrove MB/cpu-s | ratio (median) | per round | kept (datatrove) |",
        "|---|---|---|---|---|---|",
    ]
    kept_theirs = results["rounds_cpu"][0]["datatrove"]["kept"]
    for name, v in results["variants"].items():
        lines.append(
            f"| {name} | {v['mb_per_cpu_s']} | {results['datatrove_mb_per_cpu_s']} | **{v['ratio_median']}x** | "
            f"{', '.join(f'{r}x' for r in v['ratio_per_round'])} | {v['kept']} ({kept_theirs}) |"
        )
    lines += [
        "",
        "Kept counts differ by design: our Gopher stop-word rule has lists for 54 languages, datatrove's is "
        "English, so it removes nearly every German page there (and its later rules never see them), while ours "
        "runs every rule family on them. Where the CPU goes: [stage_profile.md](stage_profile.md).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with skipping("quality_stage_vs_datatrove"):
        main(before="--before" in sys.argv)
        name = "quality_stage_vs_datatrove" + ("_before" if "--before" in sys.argv else "")
        print((RESULTS_DIR / f"{name}.md").read_text())

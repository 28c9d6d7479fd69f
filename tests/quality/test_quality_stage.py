"""The quality stage over whole shards: real texts in, kept + removed with reasons out.

Texts: Tiny Shakespeare speeches and lingua-py sentences/words (../shared/data), and the
committed sample shards (sample_data/, with their ground truth of planted junk).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.config import QualityConfig
from pipeline.quality.langid import Fallback, detect_languages
from pipeline.quality.signals import columns
from pipeline.quality.stage import run_shard
from pipeline.stage import ShardContext

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
LANG_REASONS = {"lang_not_kept", "lang_low_score"}


@pytest.fixture(scope="module")
def mixed_shard(shared_data: Path) -> pa.Table:
    """Six documents, one per decision path, plus two columns the stage does not know."""
    shakespeare = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    with (shared_data / "langid" / "lingua_dev.jsonl").open(encoding="utf-8") as f:
        lingua = [json.loads(line) for line in f]
    japanese = next(r["text"] for r in lingua if r["lang"] == "ja" and r["kind"] == "sentence")
    texts = {
        "speeches": "\n\n".join(shakespeare.split("\n\n")[:12]),  # Coriolanus, act 1 opening
        "empty": " \n\t",
        "japanese": japanese,
        "writing": "writing",  # a lingua English word: `en`, but with fastText + lingua only ~0.56
        "one-sentence": next(r["text"] for r in lingua if r["lang"] == "de" and r["kind"] == "sentence"),
        "repeated": "\n".join(["First, you know Caius Marcius is chief enemy to the people."] * 50),
    }
    return pa.table(
        {
            "id": list(texts),
            "text": list(texts.values()),
            "url": [f"https://example.org/{name}" for name in texts],
            "n": pa.array(range(len(texts)), pa.int64()),
        }
    )


@pytest.fixture(scope="module")
def mixed_result(mixed_shard: pa.Table):
    return run_shard(mixed_shard, ShardContext(QualityConfig(), stage="quality"))


def _reasons(result) -> dict[str, str | None]:
    kept = {i: None for i in result.kept["id"].to_pylist()}
    removed = dict(zip(result.removed["id"].to_pylist(), result.removed["reason"].to_pylist()))
    return kept | removed


def test_each_document_gets_the_first_check_it_fails(mixed_result) -> None:
    assert _reasons(mixed_result) == {
        "speeches": None,
        "empty": "empty_text",
        "japanese": "lang_not_kept",
        "writing": "lang_low_score",
        "one-sentence": "gopher_short_doc",
        "repeated": "gopher_dup_lines",
    }


def test_every_row_is_kept_or_removed_and_unknown_columns_pass_through(mixed_shard, mixed_result) -> None:
    kept, removed = mixed_result.kept, mixed_result.removed
    assert kept.num_rows + removed.num_rows == mixed_shard.num_rows
    out_ids = kept["id"].to_pylist() + removed["id"].to_pylist()
    assert sorted(out_ids) == sorted(mixed_shard["id"].to_pylist())
    original = {row["id"]: row for row in mixed_shard.to_pylist()}
    for row in kept.to_pylist() + removed.to_pylist():
        for column in ("text", "url", "n"):
            assert row[column] == original[row["id"]][column]
    assert set(pc.unique(removed["stage"]).to_pylist()) == {"quality"}


def test_kept_and_removed_rows_carry_language_and_signal_columns(mixed_result) -> None:
    expected = {"lang": pa.string(), "lang_score": pa.float32()} | dict(columns(QualityConfig()))
    for table in (mixed_result.kept, mixed_result.removed):
        assert {name: table.schema.field(name).type for name in expected} == expected
    speeches = mixed_result.kept.to_pylist()[0]
    assert speeches["lang"] == "en" and speeches["lang_score"] > 0.9
    assert speeches["quality_words"] > 100


def test_language_counts_before_and_after_filtering(mixed_shard, mixed_result) -> None:
    extra = mixed_result.extra
    assert sum(n for key, n in extra.items() if key.startswith("lang_in:")) == mixed_shard.num_rows
    assert sum(n for key, n in extra.items() if key.startswith("lang_out:")) == mixed_result.kept.num_rows
    assert extra["lang_in:ja"] == 1 and extra["lang_out:en"] == 1 and "lang_out:ja" not in extra


def test_rerun_on_its_own_output_replaces_its_columns_and_keeps_the_same_rows(mixed_result) -> None:
    again = run_shard(mixed_result.kept, ShardContext(QualityConfig(), stage="quality"))
    assert again.removed.num_rows == 0
    assert again.kept.equals(mixed_result.kept)


# ---------------------------------------------------------------- sample_data and its ground truth
@pytest.fixture(scope="module")
def sample_result() -> tuple[dict, dict[str, dict]]:
    """Every third sample document plus all planted junk: (ground truth, output row by id)."""
    if not (SAMPLE / "ground_truth.json").exists():
        pytest.skip("needs sample_data/ (make_sample_data.py)")
    truth = json.loads((SAMPLE / "ground_truth.json").read_text(encoding="utf-8"))
    table = pa.concat_tables(pq.read_table(p) for p in sorted(SAMPLE.rglob("part-*.parquet")))
    ids = table["id"].to_pylist()
    picked = [i for i, id_ in enumerate(ids) if i % 3 == 0 or id_ in truth["junk"]]
    result = run_shard(table.take(picked), ShardContext(QualityConfig(), stage="quality"))
    rows = result.kept.to_pylist() + result.removed.to_pylist()
    assert len(rows) == len(picked)
    print("\nquality on sample_data:", len(picked), "docs, removed:", result.reasons)
    return truth, {r["id"]: r for r in rows}


def test_sample_junk_is_removed_except_repeats_on_one_line(sample_result) -> None:
    """Repeats joined by spaces make one line: Gopher's n-gram rules (not yet here) catch those."""
    truth, rows = sample_result
    outcome = Counter()
    for id_, kind in truth["junk"].items():
        one_line = kind == "repeated_line" and "\n" not in rows[id_]["text"]
        outcome[(kind, one_line, rows[id_].get("reason") is not None)] += 1
    print("junk (kind, one line, removed):", sorted(outcome.items()))
    assert outcome[("short_fragment", False, False)] == 0
    assert outcome[("repeated_line", False, False)] == 0
    word_lists_kept = outcome[("word_list", False, False)]
    assert word_lists_kept <= 0.1 * sum(outcome[("word_list", False, r)] for r in (True, False))


def test_sample_languages_follow_the_ground_truth(sample_result) -> None:
    truth, rows = sample_result
    cfg = QualityConfig()
    gold = {id_: truth["languages"][id_] for id_ in rows}
    target = [i for i, lang in gold.items() if lang in cfg.languages]
    # Other languages: also no regional variant of a target language (`pt-BR`, `de-1996`).
    other = [i for i, lang in gold.items() if lang and lang.split("-")[0] not in cfg.languages]
    agree = sum(rows[i]["lang"] == gold[i] for i in target) / len(target)
    dropped = sum(rows[i].get("reason") in LANG_REASONS for i in other) / len(other)
    print(f"target-language labels agree {agree:.3f}; other languages dropped {dropped:.3f}")
    assert agree > 0.97
    assert dropped > 0.95


@pytest.fixture(scope="module")
def declarations() -> pa.Table:
    """300 of sample_data's UDHR documents: many languages, fastText often unsure."""
    table = pa.concat_tables(pq.read_table(p) for p in sorted(SAMPLE.rglob("part-*.parquet")))
    return table.filter(pc.starts_with(table["id"], "udhr-")).slice(0, 300)


def test_skipping_lingua_where_the_document_is_removed_anyway_keeps_every_decision(declarations) -> None:
    """`lingua.skip_when_removed_anyway` on declarations in many languages: the same rows kept,
    byte for byte, the same rows removed; a removed row whose label changed has fastText's label
    and score instead, and is long text on which fastText was sure (shorter or unsure text is
    where lingua corrects fastText, so it still decides there)."""
    table = declarations
    exact = run_shard(table, ShardContext(QualityConfig(), stage="quality"))
    cfg = QualityConfig(lingua={"skip_when_removed_anyway": True})
    fast = run_shard(table, ShardContext(cfg, stage="quality"))
    assert fast.kept.equals(exact.kept)
    assert fast.removed["id"].equals(exact.removed["id"])
    changed = [
        (row, before)
        for row, before in zip(fast.removed.to_pylist(), exact.removed.to_pylist())
        if row["lang"] != before["lang"]
    ]
    print(f"\n{len(changed)} of {exact.removed.num_rows} removed rows relabelled")
    assert len(changed) > 10  # lingua was skipped for these (23 when written)
    fasttext_labels, fasttext_scores = detect_languages([row["text"] for row, _ in changed], Fallback(enabled=False))
    assert [row["lang"] for row, _ in changed] == fasttext_labels
    assert [row["lang_score"] for row, _ in changed] == pytest.approx(fasttext_scores, abs=1e-6)
    assert {row["reason"] for row, _ in changed} <= LANG_REASONS
    skip = cfg.lingua
    assert all(len(" ".join(row["text"][: cfg.max_chars].split())) >= skip.skip_from_chars for row, _ in changed)
    assert min(fasttext_scores) >= skip.skip_from_score


def test_skip_when_removed_anyway_changes_nothing_where_languages_are_not_filtered(declarations) -> None:
    """With `filter_languages` off (a code source's preset) no document is removed for its
    language, so lingua is never skipped: every row, labels included, as without the setting."""
    exact = run_shard(declarations, ShardContext(QualityConfig(filter_languages=False), stage="quality"))
    cfg = QualityConfig(filter_languages=False, lingua={"skip_when_removed_anyway": True})
    fast = run_shard(declarations, ShardContext(cfg, stage="quality"))
    assert fast.kept.equals(exact.kept)
    assert fast.removed.equals(exact.removed)

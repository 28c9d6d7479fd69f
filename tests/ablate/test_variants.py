"""Corpus variants: each trains on exactly the documents its stage left; a threshold moved in a
variant, decided again from the columns, equals rerunning the stage with it; and a variant that
cannot be made is a one-line error before any training."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.ablate.data import prepare
from pipeline.ablate.variants import Build, check, documents, parse_variant, parts
from pipeline.config import VariantConfig
from pipeline.errors import InputError
from pipeline.quality.redecide import redecide
from pipeline.quality.stage import run_shard
from pipeline.shards import read_input_shard, with_provenance
from pipeline.stage import ShardContext
from pipeline.tokenizer.encode import decode, is_val, load_tokenizer
from pipeline.tokenizer.mixture import ENCODED
from pipeline.tokenizer.token_file import read_doc_offsets, read_tokens

pytestmark = pytest.mark.slow


def read_stage(build_dir: Path, stage: str, removed: bool = False) -> pa.Table:
    folder = build_dir / stage / ("removed" if removed else "")
    return pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))


def training_texts(build: Build, table: pa.Table) -> Counter[str]:
    """The texts of a table's documents that fall in the build's training split."""
    tok = build.config.tokenizer
    rows = zip(table["id"].to_pylist(), table["text"].to_pylist())
    return Counter(text for doc_id, text in rows if not is_val(doc_id, build.config.seed, tok.val_fraction))


def encoded_texts(build: Build, folder: Path) -> Counter[str]:
    """Every training document the variant's encoded shards hold, decoded."""
    tokenizer = load_tokenizer(build.dir / "tokenizer" / "tokenizer.json")
    texts: Counter[str] = Counter()
    for path in sorted((folder / ENCODED).glob("train-*.bin")):
        tokens, starts = read_tokens(path), read_doc_offsets(path)
        for start, end in zip(starts, [*starts[1:], len(tokens)]):
            texts[decode(tokenizer, tokens[start:end].tolist())] += 1
    return texts


@pytest.fixture(scope="module")
def build(ablation_build: Path) -> Build:
    return Build.open(ablation_build)


@pytest.mark.parametrize("stage", ["quality", "dedup", "privacy"])
def test_a_stage_variant_trains_on_exactly_the_documents_the_stage_kept(build, tmp_path, stage):
    record = prepare(build, VariantConfig(name=stage, stage=stage), tmp_path)
    kept = read_stage(build.dir, stage)
    assert encoded_texts(build, tmp_path) == training_texts(build, kept)
    assert record["train_docs"] + record["val_docs"] == kept.num_rows
    assert list(tmp_path.glob("train-*.bin"))  # the mixture the runs read


def test_the_raw_variant_is_the_input_as_the_first_text_stage_read_it(build, tmp_path, sample_slice):
    prepare(build, VariantConfig(name="raw", stage="raw"), tmp_path)
    given = pa.concat_tables(pq.read_table(p) for p in sorted(sample_slice.glob("part-*.parquet")))
    assert encoded_texts(build, tmp_path) == training_texts(build, given)  # junk, foreign text and copies too


def test_a_stage_switched_off_is_its_input(build):
    variant = VariantConfig(name="no_dedup", stage="dedup", set={"enabled": False})
    ids = {i for part in parts(build, variant) for i in documents(build, variant, part)["id"].to_pylist()}
    assert ids == set(read_stage(build.dir, "quality")["id"].to_pylist())


def test_deciding_again_with_the_settings_the_stage_ran_with_changes_no_decision(build):
    before = build.config.for_source("first").quality  # both sources are of kind other: one section
    kept, removed = read_stage(build.dir, "quality"), read_stage(build.dir, "quality", removed=True)
    nulls = pa.nulls(kept.num_rows, pa.string())
    rows = pa.concat_tables(
        [kept.append_column("stage", nulls).append_column("reason", nulls), removed], promote_options="default"
    )
    again = redecide(rows, before, before)
    assert sorted(again.kept["id"].to_pylist()) == sorted(kept["id"].to_pylist())
    decided = dict(zip(again.removed["id"].to_pylist(), again.removed["reason"].to_pylist()))
    assert decided == dict(zip(removed["id"].to_pylist(), removed["reason"].to_pylist()))


def test_a_moved_threshold_decided_from_the_columns_equals_rerunning_the_stage_with_it(build, sample_slice):
    # Looser (fewer words) and stricter (fewer repeated lines) at once, and a rule family off.
    changes = {"gopher.min_words": 20, "repetition.max_dup_line_fraction": 0.1, "keywords.enabled": False}
    variant = VariantConfig(name="moved", stage="quality", set=changes)
    check(variant, build)
    decided = {i for part in parts(build, variant) for i in documents(build, variant, part)["id"].to_pylist()}

    section = build.config.quality.model_copy(deep=True)
    section.gopher.min_words, section.repetition.max_dup_line_fraction = 20, 0.1
    section.keywords.enabled = False
    reference_lm = build.dir / "quality" / "_reference_lm" / "reference_lm.npz"
    rerun = set()
    for shard in build.inputs:
        table = with_provenance(read_input_shard(shard.path), shard.source, shard.id_prefix)
        result = run_shard(table, ShardContext(section, stage="quality", artifacts={"reference_lm": reference_lm}))
        rerun |= set(result.kept["id"].to_pylist())
    assert decided == rerun
    assert decided != set(read_stage(build.dir, "quality")["id"].to_pylist())  # the change did change something


def test_restore_brings_back_what_one_rule_removed_and_where_keeps_what_meets_its_condition(build):
    kept, removed = read_stage(build.dir, "quality"), read_stage(build.dir, "quality", removed=True)
    short = removed.filter(pc.equal(removed["reason"], "gopher_short_doc"))
    assert short.num_rows
    for variant, expected in (
        (
            VariantConfig(name="r", stage="quality", restore=["gopher_short_doc"]),
            kept["id"].to_pylist() + short["id"].to_pylist(),
        ),
        (
            VariantConfig(name="w", stage="quality", where="quality_words >= 100"),
            kept.filter(pc.greater_equal(kept["quality_words"], 100))["id"].to_pylist(),
        ),
    ):
        got = [i for part in parts(build, variant) for i in documents(build, variant, part)["id"].to_pylist()]
        assert sorted(got) == sorted(expected)


def test_another_mixture_realises_the_variant_weights(build, tmp_path):
    record = prepare(build, parse_variant("first_heavy=privacy:weight.first=0.9,weight.rest=0.1"), tmp_path)
    shares = {name: s["realised_share"] for name, s in record["mixture"]["sources"].items()}
    assert shares["first"] == pytest.approx(0.9, abs=0.02)


def test_a_variant_on_the_command_line_reads_settings_reasons_conditions_and_weights():
    variant = parse_variant(
        "v=quality:gopher.min_words=20,languages=[en, de],restore=gopher_short_doc|gopher_stop_words,"
        "where=quality_words >= 100,weight.web=0.5"
    )
    assert variant.stage == "quality"
    assert variant.set == {"gopher.min_words": 20, "languages": ["en", "de"]}
    assert variant.restore == ["gopher_short_doc", "gopher_stop_words"]
    assert variant.where == "quality_words >= 100" and variant.weights == {"web": 0.5}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("v=quality:c4.min_words_per_line=5", "quality.c4.min_words_per_line"),  # C4 cleaning rewrites the text
        ("v=quality:filter_languages=false", "before the rules"),  # rows never judged would pass
        ("v=quality:fineweb.enabled=true", "did not record"),  # a family that was off
        ("v=dedup:minhash.threshold=0.5", "declares no redecide"),
        ("v=quality:restore=no_such_reason", "no_such_reason"),
        ("v=quality:weight.nowhere=1", "nowhere"),
        ("v=extract", "did not run"),
        ("v=raw:where=quality_words > 3", "restore and where need a stage"),
        ("v=quality:where=quality_words", "COLUMN OP VALUE"),
    ],
)
def test_a_variant_that_cannot_be_made_is_a_one_line_error(build, spec, needle):
    variant = parse_variant(spec)
    with pytest.raises(InputError, match=needle.replace("[", r"\[")) as error:
        check(variant, build)
        for part in parts(build, variant):
            documents(build, variant, part)
    assert "\n" not in str(error.value)

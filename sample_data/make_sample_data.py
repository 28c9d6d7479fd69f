"""Build the committed sample shards in ``sample_data/`` from real third-party text.

Why: the default run and the tests need a small, realistic corpus whose defects are known
exactly, so every stage (language ID, quality rules, exact/near de-duplication, PII scrubbing)
can be checked against ground truth.  No text here is written by us: every document is cut,
joined, repeated, recased or re-whitespaced from the files in ``shared/data`` (see README.md
for sources and licences).  Everything is driven by one seeded RNG and written in a fixed
order, so two runs give byte-identical Parquet and JSON files.

    .venv/bin/python sample_data/make_sample_data.py [--shared PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261125
TARGET_LANGS = {"en", "de", "es", "it", "ru", "pl", "cs", "pt"}  # languages a build keeps
PII_TYPES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN", "PERSON"]
SHAKESPEARE_TRAIN_CHARS = 1003854  # text[:1003854] is the train split; never use validation
N_UDHR_DOCS = 1820
MIN_BASE_CHARS = 100  # shorter cut-outs are dropped, so every short doc is planted junk
FORTUNES_PER_DOC_WEIGHTS = [8, 6, 4, 3, 2, 1, 1]  # 4..10 fortunes a page, short pages commoner
N_EXACT, N_NORM, N_NEAR = 250, 150, 300
N_WORDLIST, N_REPEAT, N_SHORT = 100, 100, 150
N_PII = 400
# `origin` names the data set a document was cut from; `source`, the build source, is the folder.
SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("origin", pa.string())])
# The build source (sample_data/<source>/, sources.yaml) of each data set, the way a user would
# hold them: web pages, plays and poems as books, quotes and sentences as other, declarations as
# wiki-like articles. A planted copy sits with its original.
SOURCE_OF = {
    "cc_docs": "web",
    "tinyshakespeare": "books",
    "fortunes_multilingual": "other",
    "lingua": "other",
    "udhr": "wiki",
}
DOCS_PER_SHARD = 1500
# The quality stage's default languages: the perplexity filter's reference set covers each.
REFERENCE_LANGS = ("en", "de", "es", "fr", "it", "pt", "ru", "pl", "cs")
REFERENCE_LINE_CHARS = 400  # sentences/paragraphs are joined into lines of about this length


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def doc(id_: str, text: str, source: str, lang: str | None) -> dict:
    return {"id": id_, "text": text, "source": source, "lang": lang}


def n_words(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------- base documents per source
def cc_docs(shared: Path) -> list[dict]:
    rows = read_jsonl(shared / "corpora/cc_docs.jsonl")
    return [doc(f"cc-{i:06d}", r["text"], "cc_docs", None) for i, r in enumerate(rows)]


def shakespeare_docs(shared: Path, rng: random.Random) -> list[dict]:
    """Consecutive speeches (blank-line separated) up to a random 600-2500 char budget."""
    text = (shared / "corpora/tinyshakespeare.txt").read_text(encoding="utf-8")
    speeches = [s.strip("\n") for s in text[:SHAKESPEARE_TRAIN_CHARS].split("\n\n")]
    speeches = [s for s in speeches if s.strip()]
    docs, chunk, budget = [], [], round(rng.triangular(600, 2500, 600))
    for speech in speeches:
        chunk.append(speech)
        if sum(len(s) + 2 for s in chunk) >= budget:
            docs.append("\n\n".join(chunk))
            chunk, budget = [], round(rng.triangular(600, 2500, 600))
    if chunk:
        docs.append("\n\n".join(chunk))
    return [doc(f"shakespeare-{i:04d}", t, "tinyshakespeare", "en") for i, t in enumerate(docs)]


def consecutive_groups(items: list, draw, min_size: int) -> list[list]:
    """Cut items into consecutive groups of draw() items; fold a short tail into its neighbour."""
    groups, i = [], 0
    while i < len(items):
        k = draw()
        groups.append(items[i : i + k])
        i += k
    if len(groups) > 1 and len(groups[-1]) < min_size:
        tail = groups.pop()
        groups[-1] = groups[-1] + tail
    return groups


def fortune_docs(shared: Path, rng: random.Random) -> list[dict]:
    """4-10 consecutive fortunes of one language and source file, like a quotes page."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in read_jsonl(shared / "corpora/fortunes_multilingual.jsonl"):
        groups.setdefault((r["lang"], r["source_file"]), []).append(r["text"])
    out, counters = [], {}
    for (lang, _src), texts in groups.items():
        draw = lambda: rng.choices(range(4, 11), weights=FORTUNES_PER_DOC_WEIGHTS)[0]  # noqa: E731
        for chunk in consecutive_groups(texts, draw, 4):
            n = counters[lang] = counters.get(lang, -1) + 1
            out.append(doc(f"fortune-{lang}-g{n:04d}", "\n\n".join(chunk), "fortunes_multilingual", lang))
    return out


def lingua_docs(lingua: list[dict], rng: random.Random) -> list[dict]:
    """Sentences of one language, shuffled, 5-10 per document in 1-3 paragraphs."""
    by_lang: dict[str, list[str]] = {}
    for r in lingua:
        if r["kind"] == "sentence":
            by_lang.setdefault(r["lang"], []).append(r["text"])
    out = []
    for lang in sorted(by_lang):
        sents = by_lang[lang][:]
        rng.shuffle(sents)
        draw = lambda: rng.choices(range(5, 11), weights=[4, 3, 2, 2, 1, 1])[0]  # noqa: E731
        for n, group in enumerate(consecutive_groups(sents, draw, 5)):
            cuts = sorted(rng.sample(range(1, len(group)), min(rng.randint(0, 2), len(group) - 1)))
            paras = [" ".join(group[a:b]) for a, b in zip([0] + cuts, cuts + [len(group)])]
            out.append(doc(f"lingua-{lang}-{n:04d}", "\n\n".join(paras), "lingua", lang))
    return out


def udhr_docs(shared: Path, rng: random.Random) -> list[dict]:
    """4-8 consecutive paragraphs of one declaration; a seeded subset of N_UDHR_DOCS."""
    decls: dict[str, list[dict]] = {}
    for r in read_jsonl(shared / "langid/udhr_paragraphs_dev.jsonl"):
        decls.setdefault(r["code"], []).append(r)
    docs = []
    for code, rows in decls.items():
        for n, group in enumerate(consecutive_groups(rows, lambda: rng.randint(4, 8), 4)):
            docs.append(doc(f"udhr-{code}-{n:03d}", "\n\n".join(r["text"] for r in group), "udhr", rows[0]["bcp47"]))
    docs = [d for d in docs if len(d["text"]) >= MIN_BASE_CHARS]
    keep = sorted(rng.sample(range(len(docs)), min(N_UDHR_DOCS, len(docs))))
    return [docs[i] for i in keep]


# ---------------------------------------------------------------- planted defects
def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = text.lower().split()
    return {tuple(w[i : i + n]) for i in range(max(1, len(w) - n + 1))}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def drop_natural_near_dups(docs: list[dict], threshold: float = 0.5) -> list[dict]:
    """Drop base docs that already overlap a kept one (the sources repeat themselves: one
    fortune in two files, UDHR spelling variants), so ground truth names every duplicate."""
    index: dict[tuple, list[int]] = {}
    sizes, kept = [], []
    for d in docs:
        s = shingles(d["text"])
        common: dict[int, int] = {}
        for g in s:
            for k in index.get(g, ()):
                common[k] = common.get(k, 0) + 1
        if any(n / (len(s) + sizes[k] - n) >= threshold for k, n in common.items()):
            continue
        for g in s:
            index.setdefault(g, []).append(len(kept))
        sizes.append(len(s))
        kept.append(d)
    return kept


def exact_duplicates(originals: list[dict], rng: random.Random) -> tuple[list[dict], dict]:
    """Byte-identical copies under new ids; some originals get 2-3 copies."""
    copies, truth = [], {}
    for orig in originals:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            if len(copies) == N_EXACT:
                return copies, truth
            cid = f"dup-exact-{len(copies):04d}"
            copies.append(doc(cid, orig["text"], orig["source"], orig["lang"]))
            truth[cid] = orig["id"]
    return copies, truth


def recase_rewhitespace(text: str, rng: random.Random) -> str:
    text = rng.choice([str.upper, str.lower, str.title])(text)
    how = rng.choice(["double_spaces", "blank_lines", "trailing_spaces", "crlf"])
    if how == "double_spaces":
        return text.replace(" ", "  ")
    if how == "blank_lines":
        return text.replace("\n", "\n\n") + "\n\n"
    if how == "trailing_spaces":
        return "\n".join(line + " " * rng.randint(1, 3) for line in text.split("\n"))
    return text.replace("\n", "\r\n") + "\r\n"


def normalised_duplicates(originals: list[dict], rng: random.Random) -> tuple[list[dict], dict]:
    """Copies differing only in case and whitespace (equal after lower() + whitespace collapse)."""
    copies, truth = [], {}
    for orig in originals:
        text = recase_rewhitespace(orig["text"], rng)
        if text == orig["text"] or norm(text) != norm(orig["text"]):
            continue  # e.g. 'ß'.upper() == 'SS' does not lower back: not a pure case change
        cid = f"dup-norm-{len(copies):04d}"
        copies.append(doc(cid, text, orig["source"], orig["lang"]))
        truth[cid] = orig["id"]
        if len(copies) == N_NORM:
            break
    return copies, truth


def edit_near(text: str, donor_lines: list[str], rng: random.Random) -> tuple[str, str]:
    """One small edit using real lines from another document of the same source."""
    lines = text.split("\n")
    edit = rng.choice(["first_line", "last_line", "insert_lines", "delete_line", "drop_words"])
    body = [i for i, line in enumerate(lines) if line.strip()]
    if edit == "first_line":
        lines[body[0]] = rng.choice(donor_lines)
    elif edit == "last_line":
        lines[body[-1]] = rng.choice(donor_lines)
    elif edit == "insert_lines":
        at = rng.randint(0, len(lines))
        lines[at:at] = rng.sample(donor_lines, min(len(donor_lines), rng.randint(1, 2)))
    elif edit == "delete_line":
        del lines[rng.choice(body)]
    else:
        words = text.split(" ")
        for _ in range(rng.randint(2, 5)):
            del words[rng.randrange(len(words))]
        return " ".join(words), edit
    return "\n".join(lines), edit


def near_duplicates(originals: list[dict], pool: list[dict], rng: random.Random) -> tuple[list[dict], dict]:
    """Small edits; only copies with word 5-gram Jaccard >= 0.8 to their original are kept."""
    by_kind: dict[tuple, list[dict]] = {}
    for d in pool:
        by_kind.setdefault((d["source"], d["lang"]), []).append(d)
    copies, truth = [], {}
    for orig in originals:
        donors = [d for d in by_kind[(orig["source"], orig["lang"])] if d is not orig]
        for _ in range(rng.choice([1, 1, 2])):
            donor = rng.choice(donors)
            donor_lines = [x for x in donor["text"].split("\n") if x.strip()]
            text, edit = edit_near(orig["text"], donor_lines, rng)
            j = jaccard(orig["text"], text)
            if j < 0.8 or norm(text) == norm(orig["text"]):
                continue
            cid = f"dup-near-{len(copies):04d}"
            copies.append(doc(cid, text, orig["source"], orig["lang"]))
            truth[cid] = {"original": orig["id"], "jaccard": round(j, 4), "edit": edit}
            if len(copies) == N_NEAR:
                return copies, truth
    return copies, truth


def junk_docs(lingua: list[dict], shakespeare: list[dict], rng: random.Random) -> tuple[list[dict], dict]:
    """Word lists, one real line repeated 20-200 times, and very short fragments."""
    singles: dict[str, list[str]] = {}
    for r in lingua:
        if r["kind"] == "single_word":
            singles.setdefault(r["lang"], []).append(r["text"])
    langs = sorted(singles)
    out, truth = [], {}
    for i in range(N_WORDLIST):
        lang = rng.choice(langs)
        words = [rng.choice(singles[lang]) for _ in range(rng.randint(20, 200))]
        text = rng.choice([" ", "\n"]).join(words)
        out.append(doc(f"junk-wordlist-{i:04d}", text, "lingua", lang))
        truth[out[-1]["id"]] = "word_list"
    sentences = [r for r in lingua if r["kind"] == "sentence"]
    verse = [x for d in shakespeare for x in d["text"].split("\n") if len(x) > 30]
    for i in range(N_REPEAT):
        if rng.random() < 0.5:
            r = rng.choice(sentences)
            line, source, lang = r["text"], "lingua", r["lang"]
        else:
            line, source, lang = rng.choice(verse), "tinyshakespeare", "en"
        text = rng.choice(["\n", " "]).join([line] * rng.randint(20, 200))
        out.append(doc(f"junk-repeat-{i:04d}", text, source, lang))
        truth[out[-1]["id"]] = "repeated_line"
    short = [r for r in lingua if r["kind"] in ("word_pair", "single_word") and len(r["text"]) < 30]
    for i, r in enumerate(rng.sample(short, N_SHORT)):
        out.append(doc(f"junk-short-{i:04d}", r["text"], "lingua", r["lang"]))
        truth[out[-1]["id"]] = "short_fragment"
    return out, truth


def plant_pii(hosts: list[dict], shared: Path, rng: random.Random) -> dict:
    """Insert 1-2 whole presidio sentences as new paragraphs; record every span's offsets."""
    rows = read_jsonl(shared / "pii/presidio_synth_dev.jsonl")
    by_type = {t: [r for r in rows if any(s["label"] == t for s in r["spans"])] for t in PII_TYPES}
    truth = {}
    for k, host in enumerate(hosts):
        sep = "\n\n" if "\n\n" in host["text"] else "\n"
        blocks = host["text"].split(sep)
        picks = [rng.choice(by_type[PII_TYPES[(k + j) % len(PII_TYPES)]]) for j in range(rng.choice([1, 1, 2]))]
        for p in picks:
            blocks.insert(rng.randint(0, len(blocks)), p)  # dict marks a planted block
        text, spans = "", []
        for i, b in enumerate(blocks):
            text += sep if i else ""
            if isinstance(b, dict):
                spans += [
                    {
                        "type": s["label"],
                        "value": s["text"],
                        "start": len(text) + s["start"],
                        "end": len(text) + s["end"],
                    }
                    for s in b["spans"]
                ]
                b = b["text"]
            text += b
        for s in spans:
            assert text[s["start"] : s["end"]] == s["value"], (host["id"], s)
        host["text"] = text
        truth[host["id"]] = spans
    return truth


# ---------------------------------------------------------------- perplexity reference set
def reference_texts(shared: Path) -> dict[str, list[str]]:
    """Per language, the lingua sentences and the UDHR paragraphs in file order, joined into
    lines of >= REFERENCE_LINE_CHARS: edited prose (news, Wikipedia, the declaration) that the
    quality stage's reference language model learns "normal text" from. No RNG is used."""
    units: dict[str, list[str]] = {lang: [] for lang in REFERENCE_LANGS}
    for r in read_jsonl(shared / "langid/lingua_dev.jsonl"):
        if r["kind"] == "sentence" and r["lang"] in units:
            units[r["lang"]].append(r["text"])
    for r in read_jsonl(shared / "langid/udhr_paragraphs_dev.jsonl"):
        lang = r["bcp47"].split("-")[0]
        if lang in units:
            units[lang].append(r["text"])
    out: dict[str, list[str]] = {}
    for lang, texts in units.items():
        lines, line = [], ""
        for text in texts:
            line = f"{line} {text}" if line else text
            if len(line) >= REFERENCE_LINE_CHARS:
                lines.append(" ".join(line.split()))
                line = ""
        out[lang] = lines + ([" ".join(line.split())] if line else [])
    return out


# ---------------------------------------------------------------- assembly and output
def build(shared: Path, rng: random.Random) -> tuple[list[dict], dict]:
    lingua = read_jsonl(shared / "langid/lingua_dev.jsonl")
    cc, shakes = cc_docs(shared), shakespeare_docs(shared, rng)
    fortunes, ling = fortune_docs(shared, rng), lingua_docs(lingua, rng)
    fortunes = [d for d in fortunes if len(d["text"]) >= MIN_BASE_CHARS]
    ling = [d for d in ling if len(d["text"]) >= MIN_BASE_CHARS]
    base = drop_natural_near_dups(cc + shakes + fortunes + ling + udhr_docs(shared, rng))
    kept = {d["id"] for d in base}
    shakes, fortunes, ling = ([d for d in x if d["id"] in kept] for x in (shakes, fortunes, ling))
    cc = [d for d in cc if d["id"] in kept]

    # PII hosts first (English-heavy, some non-English fortunes), then disjoint dup originals.
    english = shakes + cc + [d for d in ling if d["lang"] == "en"]
    fit = lambda d: n_words(d["text"]) >= 40 and "@" not in d["text"]  # noqa: E731 no real e-mails
    english = [d for d in english if fit(d)]
    hosts = rng.sample(english, min(len(english), N_PII - 60))
    taken = {d["id"] for d in hosts}
    hosts += rng.sample([d for d in fortunes if fit(d)], N_PII - len(hosts))
    taken |= {d["id"] for d in hosts}
    candidates = [d for d in base if d["lang"] in TARGET_LANGS or d["source"] == "cc_docs"]
    candidates = [d for d in candidates if d["id"] not in taken and n_words(d["text"]) >= 80]
    rng.shuffle(candidates)
    long_ones = [d for d in candidates if n_words(d["text"]) >= 150]
    near_orig = long_ones[:N_NEAR]
    taken |= {d["id"] for d in near_orig}
    rest = [d for d in candidates if d["id"] not in taken]
    exact_orig, norm_orig = rest[:N_EXACT], rest[N_EXACT : N_EXACT + 2 * N_NORM]

    near, near_truth = near_duplicates(near_orig, base, rng)
    exact, exact_truth = exact_duplicates(exact_orig, rng)
    normd, norm_truth = normalised_duplicates(norm_orig, rng)
    junk, junk_truth = junk_docs(lingua, shakes, rng)
    pii_truth = plant_pii(hosts, shared, rng)

    docs = base + exact + normd + near + junk
    rng.shuffle(docs)
    assert len({d["id"] for d in docs}) == len(docs), "ids must be unique"
    sources: dict[str, int] = {}
    for d in docs:
        sources[d["source"]] = sources.get(d["source"], 0) + 1
    truth = {
        "exact_duplicates": exact_truth,
        "normalised_duplicates": norm_truth,
        "near_duplicates": near_truth,
        "junk": junk_truth,
        "pii": pii_truth,
        "sources": sources,
        "languages": {d["id"]: d["lang"] for d in docs},
    }
    return docs, truth


def write(docs: list[dict], truth: dict, reference: dict[str, list[str]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference").mkdir(exist_ok=True)
    for lang, lines in reference.items():
        (out / "reference" / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for source in sorted(set(SOURCE_OF.values())):
        mine = [d for d in docs if SOURCE_OF[d["source"]] == source]
        folder = out / source
        folder.mkdir(exist_ok=True)
        shards = -(-len(mine) // DOCS_PER_SHARD)
        per = -(-len(mine) // shards)
        for s in range(shards):
            part = mine[s * per : (s + 1) * per]
            table = pa.table(
                {
                    "id": [d["id"] for d in part],
                    "text": [d["text"] for d in part],
                    "origin": [d["source"] for d in part],
                },
                schema=SCHEMA,
            )
            tmp = folder / f".part-{s:05d}.parquet.tmp"
            pq.write_table(table, tmp, compression="zstd", compression_level=19)
            tmp.replace(folder / f"part-{s:05d}.parquet")
    text = json.dumps(truth, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    (out / "ground_truth.json").write_text(text, encoding="utf-8")


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared",
        type=Path,
        default=here.parent.parent / "shared" / "data",
        help="folder with the third-party data (default: ../shared/data)",
    )
    ap.add_argument("--out", type=Path, default=here, help="output folder (default: sample_data/)")
    args = ap.parse_args()
    docs, truth = build(args.shared, random.Random(SEED))
    write(docs, truth, reference_texts(args.shared), args.out)
    print(
        f"{len(docs)} documents, {sum(len(d['text'].encode()) for d in docs)} text bytes "
        f"in the source folders {sorted(set(SOURCE_OF.values()))} under {args.out}"
    )
    for key in ("sources", "exact_duplicates", "normalised_duplicates", "near_duplicates", "junk", "pii"):
        v = truth[key]
        print(f"  {key}: {v if key == 'sources' else len(v)}")


if __name__ == "__main__":
    main()

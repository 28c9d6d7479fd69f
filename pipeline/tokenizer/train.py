"""Train a byte-level BPE tokenizer on the text of the final corpus shards.

Byte-level means every string is representable (no unknown token, no normaliser), so
`decode(encode(text)) == text` for any text. The text is streamed shard by shard, batch by
batch: training holds the word counts in memory, never the corpus.

Pre-tokenization (`cfg.pre_tokenizer`) decides where merges may not cross:
- `gpt2`: GPT-2's pattern (letters, numbers of any length, punctuation runs, spaces).
- `gpt4`: GPT-4's cl100k pattern: numbers in runs of at most 3 digits (so "1234567" is never
  one token and arithmetic sees aligned digit groups), case-insensitive contractions, a word
  may carry one leading punctuation character, newlines grouped apart from spaces.

Special tokens, in fixed id order:
- `<|endoftext|>` (id 0) separates documents. It is *special*: the encoder sets
  `encode_special_tokens`, so a document that happens to contain the literal string cannot forge
  a document boundary (see encode.py).
- the privacy stage's placeholders (`<PERSON>`, ...), one token each, then the same with a
  leading space (` <PERSON>`): a placeholder almost always follows a space, and without the
  variant "call <PERSON>" costs a lone `Ġ` token before the placeholder (a few percent more
  tokens on presidio-research's PII sentences). They are ordinary added tokens (special=False): text the
  model reads and writes like any word, matched even when special tokens are not.
- `cfg.special_tokens`: extra control tokens of the user's (special, like `<|endoftext|>`).

Bounded sample: with `cfg.sample_bytes` set, training reads at most that many UTF-8 bytes of
text, split over the sources by their weights (`plan`, as the mixture splits tokens: a source
with less than its share gives all it has and the others fill the rest). A source's size is
estimated from its shards' Parquet footers (no text read). A source over its share trains on a
bottom-k sample by bytes: the documents with the smallest seeded hashes of their ids, up to its
share. The draw is in two steps so that no process reads the whole corpus: the tokenizer stage's
`tokenizer_sample` shard step (sample.py) keeps, on the workers, each shard's candidates, the
documents hashed under twice share / size; training reads only those, finds the hash threshold
that fills the share to within one document, and trains on the documents under it. The bound
holds whatever the estimate. A corpus under the bound trains on every document, exactly as
without one. Encoding always covers every document.

Language balance: with `cfg.max_bytes_per_language` set and a `lang` column present, a
language with more training text than the cap contributes a seeded-hash sample of its documents
of about the cap in bytes (a first pass over the bounded sample reads only `lang` and text
lengths), so a dominant language does not take most of the merges.

Determinism: training with the same shards gives a byte-identical tokenizer.json, whatever the
thread count (rayon) or the process's hash seed; tests/tokenizer/test_tokenizer_train.py checks
it across processes and thread counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline.config import TokenizerConfig
from pipeline.errors import InputError
from pipeline.shards import combined_fingerprint, fingerprint
from pipeline.stage import INPUT_SOURCE, BuildContext
from pipeline.tokenizer.mixture import plan

EOT = "<|endoftext|>"
EOT_ID = 0
# The privacy stage writes these in place of the text it removes (its entity names in <>).
PLACEHOLDERS = (
    "<EMAIL_ADDRESS>",
    "<PHONE_NUMBER>",
    "<CREDIT_CARD>",
    "<IBAN_CODE>",
    "<IP_ADDRESS>",
    "<US_SSN>",
    "<PERSON>",
    "<LOCATION>",
    "<NRP>",
    "<URL>",
)
SPACED_PLACEHOLDERS = tuple(" " + p for p in PLACEHOLDERS)

# tiktoken's cl100k_base pattern (GPT-4), as the `tokenizers` regex engine (Oniguruma) reads it.
GPT4_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def added_tokens(cfg: TokenizerConfig) -> list[str]:
    """Every added token, in id order from 0."""
    return [EOT, *PLACEHOLDERS, *SPACED_PLACEHOLDERS, *cfg.special_tokens]


def pre_tokenizer(kind: str) -> pre_tokenizers.PreTokenizer:
    if kind == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's split and byte mapping
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def read_batches(path: Path, batch_size: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Stream a shard's columns batch by batch; bad files and null or non-string text are InputErrors."""
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns):
            text = batch.column("text")
            if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
                raise InputError(f"{path}: column text is {text.type}, not string. Fix the shard's schema.")
            if text.null_count:
                bad = row + pc.index(pc.is_null(text), True).as_py()
                raise InputError(f"{path}: row {bad}: null text; the stages before must drop or fill it.")
            row += batch.num_rows
            yield batch
    except (OSError, KeyError, pa.ArrowException) as exc:  # unreadable file or missing column
        raise InputError(f"{path}: cannot read columns {', '.join(columns)} ({exc}). Check the shard.") from None


def has_lang(path: Path) -> bool:
    try:
        return "lang" in pq.read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read the Parquet schema ({exc}). Check the shard.") from None


def hash_unit(key: str, seed: int | str) -> float:
    """Seeded hash of a string, read as a number in [0, 1): the same draw in every process."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def text_bytes_estimate(path: Path) -> int:
    """UTF-8 bytes of a shard's text from its Parquet footer alone: the text column's uncompressed
    size less the 4-byte length of each value (within about 1% on sample_data/)."""
    try:
        parquet = pq.ParquetFile(path)
        column = parquet.schema_arrow.get_field_index("text")
        meta = parquet.metadata
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read the Parquet footer ({exc}). Check the shard.") from None
    if column < 0:
        raise InputError(f"{path}: no column text (columns: {', '.join(parquet.schema_arrow.names)}). Check the shard.")
    size = sum(meta.row_group(i).column(column).total_uncompressed_size for i in range(meta.num_row_groups))
    return max(0, size - 4 * meta.num_rows)


@dataclass
class Sample:
    """Which documents of each source the tokenizer trains on (see the module's docstring)."""

    bound: int  # the most UTF-8 bytes of all sources together
    quota: dict[str, int]  # the most a source may bring
    wide: dict[str, float]  # the hash under which a document is a candidate (1.0: all are)
    estimate: dict[str, int]  # its text bytes, from the footers
    seed: int
    rate: dict[str, float] = field(default_factory=dict)  # the threshold found: the share of documents drawn


UNBOUNDED = 2**63 - 1
# Candidates are drawn at twice the expected rate, so that the bottom-k draw fills its share even
# when the estimate is high or the first documents in hash order are long.
OVERSAMPLE = 2.0


def sample_hashes(ids: list[str], seed: int) -> np.ndarray:
    """The seeded draw of each document, in [0, 1): the same in every process and on every worker."""
    return np.array([hash_unit(i, f"tokenizer-sample:{seed}") for i in ids], dtype=np.float64)


def candidates(table: pa.Table, wide: float, seed: int) -> pa.Table:
    """The documents of a shard hashed under `wide`."""
    return table.filter(pa.array(sample_hashes(table.column("id").to_pylist(), seed) < wide))


def plan_sample(
    shards: Sequence[tuple[Path, str]], weights: Mapping[str, float], cfg: TokenizerConfig, seed: int
) -> Sample:
    """Each source's share of `cfg.sample_bytes` and its candidates' hash threshold, from the
    shards' footers alone; every byte when 0."""
    estimate = {name: 0 for name in weights}
    for path, source in shards:
        estimate[source] += text_bytes_estimate(path)
    if not cfg.sample_bytes:
        return Sample(UNBOUNDED, dict.fromkeys(estimate, UNBOUNDED), dict.fromkeys(estimate, 1.0), estimate, seed)
    total = sum(weights.values())
    shares = {source: weight / total for source, weight in weights.items()}
    wanted = plan(estimate, shares, dict.fromkeys(weights, 1.0), cfg.sample_bytes)
    rate = {source: min(1.0, wanted[source] / n) if n else 1.0 for source, n in estimate.items()}
    # A source that keeps all it has is not cut at its estimate (which may be a little low):
    # only the bound on all sources together holds it.
    quota = {source: int(wanted[source]) if rate[source] < 1.0 else UNBOUNDED for source in weights}
    wide = {source: 1.0 if r >= 1.0 else min(1.0, OVERSAMPLE * r) for source, r in rate.items()}
    return Sample(cfg.sample_bytes, quota, wide, estimate, seed)


def fill_threshold(paths: Sequence[Path], sample: Sample, source: str, cfg: TokenizerConfig) -> float:
    """The hash threshold whose documents fill the source's quota to within one document: the
    hash of the first candidate, in hash order, that overruns it (a bottom-k sample by bytes).

    A plain rate of quota / size left a source that brings a few dozen long documents up to 30%
    short of its share (sample_data/'s web and wiki). `paths`: the source's candidate files, or
    its shards (filtered here the same way); memory: a (hash, length) pair per candidate.
    """
    wide = sample.wide[source]
    hashes, lengths = [], []
    for path in paths:
        for batch in read_batches(path, cfg.batch_size, ["id", "text"]):
            h = sample_hashes(batch.column("id").to_pylist(), sample.seed)
            n = pc.binary_length(batch.column("text")).to_numpy(zero_copy_only=False)
            hashes.append(h[h < wide])
            lengths.append(n[h < wide])
    h = np.concatenate(hashes) if hashes else np.zeros(0)
    n = np.concatenate(lengths).astype(np.int64) if lengths else np.zeros(0, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    over = np.flatnonzero(np.cumsum(n[order]) > sample.quota[source])
    return float(h[order[over[0]]]) if len(over) else wide


def sampled_batches(
    path: Path, source: str, sample: Sample, cfg: TokenizerConfig, columns: list[str], taken: Counter
) -> Iterator[pa.RecordBatch]:
    """The sampled documents of one shard, batch by batch; `taken` tallies the documents and
    bytes drawn so far, per source ("<source>:documents", "<source>:bytes") and in all ("bytes")."""
    rate = sample.rate[source]
    read = sorted({*columns, "text"} | ({"id"} if rate < 1.0 else set()))
    for batch in read_batches(path, cfg.batch_size, read):
        if rate < 1.0:
            batch = batch.filter(pa.array(sample_hashes(batch.column("id").to_pylist(), sample.seed) < rate))
        # The quota and the bound cut the stream at the first document that would overrun them.
        sizes = pc.binary_length(batch.column("text")).to_numpy(zero_copy_only=False).astype(np.int64)
        room = min(sample.quota[source] - taken[f"{source}:bytes"], sample.bound - taken["bytes"])
        fits = int((sizes.cumsum() <= room).sum())
        taken[f"{source}:documents"] += fits
        taken[f"{source}:bytes"] += int(sizes[:fits].sum())
        taken["bytes"] += int(sizes[:fits].sum())
        if fits:
            yield batch.slice(0, fits)
        if fits < len(sizes):
            return


def language_keep_shares(shards: Sequence[tuple[Path, str]], sample: Sample, cfg: TokenizerConfig) -> dict[str, float]:
    """Share of each language's sampled documents to train on so that it brings about the byte cap."""
    totals: Counter[str] = Counter()
    taken: Counter = Counter()  # the same draw as training's: a fresh tally over the same shards
    for path, source in shards:
        lang = has_lang(path)
        for batch in sampled_batches(path, source, sample, cfg, ["lang"] if lang else [], taken):
            if lang:
                lengths = pa.table(
                    {"lang": pc.fill_null(batch.column("lang"), ""), "n": pc.binary_length(batch.column("text"))}
                )
                for row in lengths.group_by("lang").aggregate([("n", "sum")]).to_pylist():
                    totals[row["lang"]] += row["n_sum"]
    cap = cfg.max_bytes_per_language
    return {lang: cap / total for lang, total in totals.items() if total > cap}


def _texts(
    shards: Sequence[tuple[Path, str]],
    sample: Sample,
    cfg: TokenizerConfig,
    keep: dict[str, float],
    counts: dict[str, int],
    taken: Counter,
    per_lang: Counter[str],
) -> Iterator[list[str]]:
    """Training texts of the sample, a batch at a time, tallying documents and UTF-8 bytes
    (per language too when capping languages)."""
    for path, source in shards:
        capped = bool(keep) and has_lang(path)
        for batch in sampled_batches(path, source, sample, cfg, ["id", "lang"] if capped else [], taken):
            text = batch.column("text")
            if capped:
                langs, ids = batch.column("lang").to_pylist(), batch.column("id").to_pylist()
                mask = [hash_unit(i, "language-sample") < keep.get(lang or "", 1.0) for i, lang in zip(ids, langs)]
                text = pc.filter(text, pa.array(mask, pa.bool_()))
                for lang, n in zip((g for g, m in zip(langs, mask) if m), pc.binary_length(text).to_pylist()):
                    per_lang[lang or ""] += n
            counts["documents"] += len(text)
            counts["bytes"] += pc.sum(pc.binary_length(text)).as_py() or 0
            yield text.to_pylist()


def train_tokenizer(
    shard_paths: Sequence[Path],
    cfg: TokenizerConfig,
    out_path: Path,
    sources: Mapping[Path, str] | None = None,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    candidate_files: Mapping[Path, Path] | None = None,
) -> dict:
    """Train byte-level BPE on the `text` column of the shards; write tokenizer.json atomically.

    sources: each shard's source (default: all one source); weights: each source's weight (default
    1 each), which splits `cfg.sample_bytes`; seed: the sample's; candidate_files: a shard's
    candidates for the sample, written by the `tokenizer_sample` step (sample.py), read in its
    place (without, the shard itself is read and filtered: the same documents).

    Returns vocab_size, documents and bytes trained on, seconds, `sample` (per source: the
    footer estimate of its text bytes, the share of its documents drawn, and the documents and
    bytes that gave), the language sampling (when capped) and longest_tokens (the ten longest
    vocabulary entries by UTF-8 bytes).
    """
    if not shard_paths:
        raise InputError("tokenizer: no shards to train on (every document was removed upstream?).")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer(cfg.pre_tokenizer)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
        special_tokens=added_tokens(cfg),  # ids 0.. in this order
        show_progress=False,
    )
    counts = {"documents": 0, "bytes": 0}
    t0 = time.perf_counter()
    # Sorted: the same set of shards gives the same run whatever order the caller listed them in.
    shards = [(path, (sources or {}).get(path, INPUT_SOURCE)) for path in sorted(shard_paths, key=str)]
    weights = weights or dict.fromkeys(sorted({source for _, source in shards}), 1.0)
    sample = plan_sample(shards, weights, cfg, seed)
    shards = [
        (path, source) if sample.wide[source] >= 1.0 else ((candidate_files or {}).get(path, path), source)
        for path, source in shards
    ]
    sample.rate = {
        source: 1.0
        if quota == UNBOUNDED
        else fill_threshold([p for p, s in shards if s == source], sample, source, cfg)
        for source, quota in sample.quota.items()
    }
    keep = language_keep_shares(shards, sample, cfg) if cfg.max_bytes_per_language else {}
    per_lang: Counter[str] = Counter()
    taken: Counter = Counter()
    tokenizer.train_from_iterator(_texts(shards, sample, cfg, keep, counts, taken, per_lang), trainer=trainer)
    seconds = time.perf_counter() - t0

    # The trainer registers every token it is given as special; placeholders must not be (above).
    spec = json.loads(tokenizer.to_str())
    specials = {EOT, *cfg.special_tokens}
    for added in spec["added_tokens"]:
        added["special"] = added["content"] in specials
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    Tokenizer.from_str(json.dumps(spec)).save(str(tmp))  # the library's own file layout
    os.replace(tmp, out_path)
    return {
        "vocab_size": tokenizer.get_vocab_size(),
        **counts,
        "seconds": round(seconds, 3),
        "sample_bytes": cfg.sample_bytes,
        # Before the language cap: what each source brought to the sample.
        "sample": {
            source: {
                "estimated_bytes": sample.estimate[source],
                "rate": round(sample.rate[source], 6),
                "documents": taken[f"{source}:documents"],
                "bytes": taken[f"{source}:bytes"],
            }
            for source in weights
        },
        # Languages over the cap: the share of their documents trained on, and the bytes that gave.
        "sampled_languages": {lang: round(share, 4) for lang, share in sorted(keep.items())},
        "language_bytes": dict(sorted(per_lang.items())),
        "longest_tokens": longest_tokens(tokenizer),
    }


def train_step(ctx: BuildContext) -> dict:
    """Build step: the tokenizer, trained once on the bounded sample (the sources over their
    share through their candidates, sample.py; the others through their shards)."""
    out = ctx.build_dir / "tokenizer" / "tokenizer.json"
    paths = [path for _, path in ctx.shards]
    sources = {path: ctx.source_of(name) for name, path in ctx.shards}
    weights = {source.name: source.weight for source in ctx.sources}
    records = ctx.records["tokenizer_sample"]
    files = {Path(r["input"]): ctx.folder / r["outputs"][0] for r in records if r["outputs"]}
    # The sample step's records fingerprint every shard (its bytes) and the plan; without them
    # (nothing to sample), the shards and the plan do.
    parts = [r["fingerprint"] for r in records] or [
        *(fingerprint(p) for p in paths),
        ctx.artifacts["tokenizer_sample_plan"]["fingerprint"],
    ]
    fp = combined_fingerprint([*parts, ctx.config_hash])

    def train() -> dict:
        record = train_tokenizer(paths, ctx.config, out, sources, weights, ctx.seed, files)
        return record | {"artifact": ctx.artifact(out)}

    record = ctx.once("tokenizer_train", fp, [out], train)
    return record | {"note": f"vocab {record['vocab_size']:,}, trained on {record['bytes'] / 1e6:,.2f} MB"}


def token_bytes(tokenizer: Tokenizer) -> list[bytes]:
    """The bytes each vocabulary id stands for (added tokens: their UTF-8 text)."""
    byte_of = {c: b for b, c in _bytes_to_unicode().items()}
    added = {i: t.content for i, t in tokenizer.get_added_tokens_decoder().items()}
    out = []
    for i in range(tokenizer.get_vocab_size()):
        token = tokenizer.id_to_token(i) or ""
        out.append(added[i].encode() if i in added else bytes(byte_of[c] for c in token))
    return out


def longest_tokens(tokenizer: Tokenizer, n: int = 10) -> list[str]:
    """The n longest learned tokens by UTF-8 bytes (decoded with replacement), ties by id."""
    first = len(tokenizer.get_added_tokens_decoder())
    learned = list(enumerate(token_bytes(tokenizer)))[first:]
    learned.sort(key=lambda it: (-len(it[1]), it[0]))
    return [b.decode("utf-8", errors="replace") for _, b in learned[:n]]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map, the one ByteLevel uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))

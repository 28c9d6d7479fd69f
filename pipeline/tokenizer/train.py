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

Language balance: with `cfg.max_bytes_per_language` set and a `lang` column present, a
language with more training text than the cap contributes a seeded-hash sample of its documents
of about the cap in bytes (a first pass reads only `lang` and text lengths), so a dominant
language does not take most of the merges. Encoding always covers every document.

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
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline.config import TokenizerConfig
from pipeline.errors import InputError
from pipeline.shards import combined_fingerprint, fingerprint
from pipeline.stage import BuildContext

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


def language_keep_shares(shard_paths: Sequence[Path], cfg: TokenizerConfig) -> dict[str, float]:
    """Share of each language's documents to train on so that it brings about the byte cap."""
    totals: Counter[str] = Counter()
    for path in shard_paths:
        if has_lang(path):
            for batch in read_batches(path, cfg.batch_size, ["lang", "text"]):
                lengths = pa.table(
                    {"lang": pc.fill_null(batch.column("lang"), ""), "n": pc.binary_length(batch.column("text"))}
                )
                for row in lengths.group_by("lang").aggregate([("n", "sum")]).to_pylist():
                    totals[row["lang"]] += row["n_sum"]
    cap = cfg.max_bytes_per_language
    return {lang: cap / total for lang, total in totals.items() if total > cap}


def _texts(
    shard_paths: Sequence[Path],
    cfg: TokenizerConfig,
    keep: dict[str, float],
    counts: dict[str, int],
    per_lang: Counter[str],
) -> Iterator[list[str]]:
    """Training texts of all shards, a batch at a time, tallying documents and UTF-8 bytes
    (per language too when sampling)."""
    for path in shard_paths:
        sampled = bool(keep) and has_lang(path)
        for batch in read_batches(path, cfg.batch_size, ["id", "lang", "text"] if sampled else ["text"]):
            text = batch.column("text")
            if sampled:
                langs, ids = batch.column("lang").to_pylist(), batch.column("id").to_pylist()
                mask = [hash_unit(i, "language-sample") < keep.get(lang or "", 1.0) for i, lang in zip(ids, langs)]
                text = pc.filter(text, pa.array(mask, pa.bool_()))
                for lang, n in zip((g for g, m in zip(langs, mask) if m), pc.binary_length(text).to_pylist()):
                    per_lang[lang or ""] += n
            counts["documents"] += len(text)
            counts["bytes"] += pc.sum(pc.binary_length(text)).as_py() or 0
            yield text.to_pylist()


def train_tokenizer(shard_paths: Sequence[Path], cfg: TokenizerConfig, out_path: Path) -> dict:
    """Train byte-level BPE on the `text` column of the shards; write tokenizer.json atomically.

    Returns vocab_size, documents and bytes trained on, seconds, the language sampling (when
    capped) and longest_tokens (the ten longest vocabulary entries by UTF-8 bytes).
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
    paths = sorted(shard_paths, key=str)
    keep = language_keep_shares(paths, cfg) if cfg.max_bytes_per_language else {}
    per_lang: Counter[str] = Counter()
    tokenizer.train_from_iterator(_texts(paths, cfg, keep, counts, per_lang), trainer=trainer)
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
        # Languages over the cap: the share of their documents trained on, and the bytes that gave.
        "sampled_languages": {lang: round(share, 4) for lang, share in sorted(keep.items())},
        "language_bytes": dict(sorted(per_lang.items())),
        "longest_tokens": longest_tokens(tokenizer),
    }


def train_step(ctx: BuildContext) -> dict:
    """Build step: the tokenizer, trained once on every shard the stage reads."""
    out = ctx.build_dir / "tokenizer" / "tokenizer.json"
    paths = [path for _, path in ctx.shards]
    fp = combined_fingerprint([fingerprint(p) for p in paths] + [ctx.config_hash])
    record = ctx.once(
        "tokenizer_train", fp, [out], lambda: train_tokenizer(paths, ctx.config, out) | {"artifact": ctx.artifact(out)}
    )
    return record | {"note": f"vocab {record['vocab_size']:,}"}


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

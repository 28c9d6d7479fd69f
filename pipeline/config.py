"""One typed config for a whole build.

Every field has a default, so an empty YAML file is a valid config. The YAML file mirrors these
classes section by section (docs/config.md, made by `make docs`); `--set section.key=value` overrides
one key. Unknown keys and impossible values are rejected before any work starts.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from pipeline.errors import InputError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


class GopherQualityConfig(Section):
    """Gopher quality rules (Rae et al. 2021, appendix A); defaults are the paper's."""

    enabled: bool = True
    """Run the Gopher quality rules."""
    min_words: int = Field(50, ge=0)
    """Fewer words: removed as gopher_short_doc."""
    max_words: int = Field(100_000, ge=1)
    """More words: removed as gopher_long_doc."""
    min_mean_word_length: float = Field(3.0, ge=0)
    """Shorter mean word length (characters): gopher_mean_word_length_low."""
    max_mean_word_length: float = Field(10.0, ge=0)
    """Longer mean word length (characters): gopher_mean_word_length_high."""
    max_symbol_word_ratio: float = Field(0.1, ge=0)
    """'#' and '...' per word."""
    max_bullet_lines_ratio: float = Field(0.9, ge=0, le=1)
    """Share of lines starting with a bullet above which a document is removed."""
    max_ellipsis_lines_ratio: float = Field(0.3, ge=0, le=1)
    """Share of lines ending in an ellipsis above which a document is removed."""
    min_alpha_words_ratio: float = Field(0.8, ge=0, le=1)
    """Share of words with an alphabetic character."""
    alpha_words_tokens: Literal["whitespace", "spacy"] = "whitespace"
    """
    What the alphabetic-words rule counts as words: whitespace tokens (the paper's words, as dolma counts
    them) or spaCy's tokens, where every comma and full stop is a word without a letter (as datatrove counts
    them; it removes punctuated prose such as verse).
    """
    min_stop_words: int = Field(2, ge=0)
    """
    Distinct words of the language's stop-word list (pipeline/quality/stopwords; the paper's eight for
    English); a language without a list skips this rule.
    """


class GopherRepetitionConfig(Section):
    """Gopher repetition rules (Rae et al. 2021, table A1); defaults are the paper's."""

    enabled: bool = True
    """Run the Gopher repetition rules."""
    max_dup_line_fraction: float = Field(0.30, ge=0, le=1)
    """Share of lines that repeat an earlier line."""
    max_dup_para_fraction: float = Field(0.30, ge=0, le=1)
    """Share of paragraphs that repeat an earlier paragraph."""
    max_dup_line_char_fraction: float = Field(0.20, ge=0, le=1)
    """Share of characters in repeated lines."""
    max_dup_para_char_fraction: float = Field(0.20, ge=0, le=1)
    """Share of characters in repeated paragraphs."""
    max_top_ngram_char_fraction: dict[int, float] = Field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    """n -> the most frequent word n-gram may cover at most this share of the characters."""
    max_dup_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )
    """n -> word n-grams seen before may cover at most this share of the characters."""


class C4Config(Section):
    """C4 line cleaning and page rules (Raffel et al. 2020, section 2.2; tfds c4_utils, datatrove)."""

    enabled: bool = False
    """
    Off by default: made for web pages, it strips verse, poems and speaker lines, which are most of
    sample_data. Thresholds are the paper's.
    """
    filter_no_terminal_punct: bool = True
    """drop lines not ending in . ? ! " ' (or ending in ...)."""
    min_words_per_line: int = Field(3, ge=0)
    """drop lines with fewer words; 0 = off."""
    max_word_length: int = Field(1000, ge=0)
    """drop lines with a longer word; 0 = off."""
    remove_citations: bool = True
    """strip [1], [edit], [citation needed] from lines."""
    filter_javascript: bool = True
    """drop lines mentioning "javascript"."""
    filter_policy: bool = True
    """drop cookie-banner / terms-of-use / privacy-policy lines."""
    filter_lorem_ipsum: bool = True
    """drop the page if a kept line has "lorem ipsum"."""
    filter_curly_bracket: bool = True
    """drop the page if a kept line has "{"."""
    min_sentences: int = Field(5, ge=0)
    """drop the page with fewer sentences left; 0 = off."""


class FineWebConfig(Section):
    """FineWeb rules (Penedo et al. 2024); thresholds are datatrove's FineWebQualityFilter defaults."""

    enabled: bool = False
    """Off by default for the same reason as C4: refrains and speaker names are duplicated lines."""
    filter_line_punct: bool = True
    """Apply the terminal-punctuation rule (fineweb_line_punct_ratio)."""
    min_line_punct_ratio: float = Field(0.12, ge=0, le=1)
    """lines ending in terminal punctuation."""
    filter_short_lines: bool = True
    """Apply the short-lines rule (fineweb_short_line_ratio)."""
    short_line_length: int = Field(30, ge=0)
    """a line of at most this many characters is short."""
    max_short_line_ratio: float = Field(0.67, ge=0, le=1)
    """Share of lines of at most short_line_length characters."""
    filter_char_dup: bool = True
    """Apply the duplicated-line characters rule (fineweb_char_dup_ratio)."""
    max_char_dup_ratio: float = Field(0.01, ge=0, le=1)
    """characters in repeated lines."""
    filter_list: bool = True
    """Apply the newlines-per-word rule (fineweb_list_ratio)."""
    max_newline_word_ratio: float = Field(0.3, ge=0)
    """newlines per word."""


class LinguaConfig(Section):
    """lingua fallback of language ID (pipeline/quality/langid.py): consulted for short or unsure text."""

    enabled: bool = True
    """Consult lingua at all; off: fastText alone decides."""
    below_score: float = Field(0.95, ge=0, le=1.01)
    """consult lingua when fastText's probability is lower."""
    short_chars: int = Field(30, ge=0)
    """... or when the text is shorter than this (characters)."""
    languages: list[str] = []
    """
    lingua's language set (fastText codes, `no` for Bokmål); [] = all 67 that lid.176 also knows. Fewer
    languages load faster and use less memory, but a text in a missing language gets a wrong label.
    """
    low_accuracy: bool = (
        False  # lingua's trigram mode: ~0.7 s / 80 MB to load instead of ~15-20 s / 0.9 GB; misses the targets
    )
    """
    lingua's trigram mode: loads faster in far less memory, but misses the accuracy targets
    (bench/results/langid_accuracy.md).
    """
    fasttext_weight: float = Field(0.2, ge=0)
    """p(lang) ~ p_fastText^w * p_lingua."""
    und_below: float = Field(0.15, ge=0, le=1)
    """combined probability under which the label is `und`."""
    max_chars: int = Field(1000, ge=1)
    """lingua reads at most this many characters of a text."""
    skip_when_removed_anyway: bool = False
    """
    Skip lingua for text of skip_from_chars or more where fastText gives every kept language (quality.languages)
    a probability under its minimum score: the document is removed whatever lingua says (a long text's score
    is capped by fastText's). Much less lingua where many documents are in other languages (docs/quality.md).
    Every keep/remove decision and every kept row stay the same; those removed rows get fastText's label and
    score, so their lang, lang_score, keyword_share and reason (lang_not_kept / lang_low_score) can differ.
    No effect where quality.filter_languages is off (nothing is removed for its language there).
    """
    skip_from_chars: int = Field(300, ge=1)
    """
    skip_when_removed_anyway applies to text of this many characters or more (after whitespace is
    collapsed), and only where fastText is sure of its label (skip_from_score). Shorter text still goes
    to lingua: on sentences (median ~90 characters) fastText alone labels ~6 points fewer right.
    """
    skip_from_score: float = Field(0.6, ge=0, le=1)
    """
    ... and where fastText's top probability is at least this. On long paragraphs fastText alone is as
    right as with lingua from ~0.6 on and mostly wrong under ~0.4 (bench/results/langid_accuracy.md).
    """


class KeywordConfig(Section):
    """Keyword filter (pipeline/quality/keywords.py): whole-word blocklist matches per language."""

    enabled: bool = True
    """Run the keyword and URL blocklist filter."""
    blocklist_dir: str = ""
    """Folder of <lang>.txt lists; "" = the shipped LDNOOBW lists (pipeline/quality/blocklists, CC BY 4.0)."""
    max_share: float = Field(0.1, ge=0, le=1)
    """Drop above this share of listed words (C4 dropped at any one; that loses medical pages)."""
    url_blocklist: str = ""
    """file of domains, one per line; "" = off. Needs a `url` column."""


class PerplexityConfig(Section):
    """Metric filter (pipeline/quality/perplexity.py): a byte n-gram Kneser-Ney reference model."""

    enabled: bool = True
    """Score perplexity under the reference model (columns perplexity, perplexity_bucket)."""
    reference_dir: str = ""
    """Folder of <lang>.txt files, one reference document per line; "" = sample_data/reference."""
    order: int = Field(5, ge=1, le=8)
    """bytes of context + 1 (an n-gram key must fit 64 bits)."""
    head_percentile: float = Field(33.3, ge=0, le=100)
    """
    CCNet-style buckets: head up to this percentile of the reference's held-out perplexities, tail above the
    second one, middle between.
    """
    tail_percentile: float = Field(66.7, ge=0, le=100)
    """Percentile of the reference's held-out perplexities above which a document is in the tail bucket."""
    drop_tail: bool = False
    """remove tail-bucket documents (reason perplexity_tail)."""

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> PerplexityConfig:
        if self.head_percentile > self.tail_percentile:
            raise ValueError("head_percentile must not exceed tail_percentile")
        return self


class CodeConfig(Section):
    """Code rules (The Stack / StarCoder's filters; on for `code` sources, docs/sources.md)."""

    enabled: bool = False
    """Run the code rules (the `code` source kind switches them on)."""
    max_line_length: int = Field(1000, ge=1)
    """A file with a longer line is minified or data, not code a person wrote (code_long_lines)."""
    max_mean_line_length: float = Field(100.0, gt=0)
    """Mean characters per line above which a file is removed (code_mean_line_length)."""
    min_alnum_fraction: float = Field(0.25, ge=0, le=1)
    """Share of letters and digits below which a file is removed: encoded data, tables (code_alnum_fraction)."""
    autogenerated_lines: int = Field(5, ge=0)
    """
    A file whose first lines say it was generated ("auto-generated", "generated by", "do not edit") is
    removed (code_autogenerated); 0 = off.
    """


class ExtractConfig(Section):
    """
    Extract stage (raw web input only: WARC/WET archives, Parquet/JSONL with an `html` column): HTTP 200 HTML
    responses to main text (docs/extract.md).
    """

    enabled: bool = True
    """Run the extract stage when the input is raw web (text shards skip it whatever this says)."""
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"
    """
    trafilatura: the better text; resiliparse: several times faster, a little less precise
    (bench/results/extract_quality.md). Both are followed by checks of ours: link share from the
    page's tree, and boilerplate-line rules (docs/extract.md).
    """
    max_html_bytes: int = Field(4 << 20, ge=1)
    """Payloads larger than this (bytes, as the WARC header says) are removed unread as too_large."""
    drop_duplicate_urls: bool = True
    """
    A page fetched more than once in the build (same normalised URL) is kept once, from its latest fetch; the
    others are removed as duplicate_url.
    """
    max_docs_per_domain: int = Field(0, ge=0)
    """At most this many documents per domain (host without www.), in input order; 0 = no cap (domain_cap)."""
    url_blocklist: str = ""
    """
    File of domains, one per line, whose pages are removed unread (url_blocklist); "" = off. Usually the same
    file as quality.keywords.url_blocklist.
    """


class QualityConfig(Section):
    """
    Quality stage: language ID, keyword filter, then the rule families in order (Gopher quality, Gopher
    repetition, C4, FineWeb; FineWeb judges the text C4 has cleaned) and the perplexity metric.
    """

    enabled: bool = True
    """Run the quality stage."""
    languages: list[str] = Field(default_factory=lambda: ["en", "de", "es", "fr", "it", "pt", "ru", "pl", "cs"])
    """Target languages (ISO 639-1, fastText lid.176 labels). Everything else is removed."""
    filter_languages: bool = True
    """Remove documents outside `languages` or under the score; off: identify and record only (code)."""
    min_lang_score: float = Field(0.65, ge=0, le=1)
    """Documents whose top language scores lower are removed (lang_low_score)."""
    max_chars: int = Field(1_000_000, ge=1)
    """
    A resource guard, checked first: longer documents (a dump, a whole book) are removed as doc_too_long
    before any rule reads them; Gopher's max_words would remove them anyway.
    """
    min_lang_score_per_language: dict[str, float] = {}
    """Per-language minimum scores that replace min_lang_score, e.g. {hr: 0.9}; `und` is never kept."""
    lingua: LinguaConfig = Field(default_factory=LinguaConfig)
    keywords: KeywordConfig = Field(default_factory=KeywordConfig)
    gopher: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    c4: C4Config = Field(default_factory=C4Config)
    fineweb: FineWebConfig = Field(default_factory=FineWebConfig)
    rules_on_cleaned_text: bool = False
    """
    With C4 on, the Gopher and code rules read the text C4's line cleaning left, as FineWeb's pipeline reads
    extracted text (the `web` kind: menus and footers then cannot fail a page whose body passes); off: the
    text as it came in.
    """
    code: CodeConfig = Field(default_factory=CodeConfig)
    perplexity: PerplexityConfig = Field(default_factory=PerplexityConfig)


NEGATIVE_LABEL = "__label__cc"  # a trained classifier's negatives: the raw input (GPT-3's Common Crawl)


class ClassifierConfig(Section):
    """
    Classifier stage (pipeline/classifier): a fastText quality classifier as GPT-3 used one, trained in the
    build on reference text (positives) against a seeded sample of the raw input (negatives), or a published
    model given by path; every document gets `quality_classifier_score` (docs/model_filters.md).
    """

    enabled: bool = False
    """
    Off by default: what counts as high quality is the build's choice (a source or reference text to imitate),
    and on a mixture of books, quotes and declarations any one reference removes good text of the other kinds.
    """
    model: str = ""
    """
    A fastText `.bin` to score with instead of training one (DCLM's `openhermes_reddit` model or any published
    fastText quality model); "" = train one in the build.
    """
    positive_label: str = "__label__hq"
    """The label whose probability is the score; a model trained here calls its negatives __label__cc."""
    positive_source: str = ""
    """
    Positives: the documents of this source (one of `sources`, e.g. a wiki or books source) as they entered
    the pipeline, and no negatives from it; "" = the perplexity reference folder (quality.perplexity.reference_dir).
    """
    unit: Literal["document", "line"] = "document"
    """
    What one fastText example is. document: a whole document, as GPT-3 and DCLM train. line: each non-empty
    line, and a document's score is the mean of its lines' scores weighted by their characters; against raw
    web pages this tells main-text lines from navigation lines, which whole pages against short reference
    paragraphs do not (bench/results/classifier.md).
    """
    max_per_class: int = Field(50_000, ge=10)
    """
    At most this many positive examples (a seeded sample), and as many negatives, drawn seeded from the raw
    input (documents or lines, by `unit`).
    """
    epoch: int = Field(5, ge=1)
    """fastText training epochs."""
    lr: float = Field(0.1, gt=0)
    """fastText learning rate."""
    word_ngrams: int = Field(2, ge=1, le=5)
    """fastText word n-grams (2: bigrams, as DCLM's and datatrove's quality classifiers)."""
    dim: int = Field(64, ge=2)
    """fastText vector size."""
    bucket: int = Field(200_000, ge=1)
    """
    fastText hash buckets for word n-grams: the model file is about (words + bucket) x dim x 4 bytes (fastText's
    2M buckets at dim 100 make it 800 MB).
    """
    min_count: int = Field(1, ge=1)
    """Words seen fewer times in the training set get no vector of their own."""
    mode: Literal["threshold", "pareto"] = "threshold"
    """
    threshold: remove below `threshold`; pareto: GPT-3's noisy rule, keep when a seeded draw from
    pareto(pareto_alpha) exceeds 1 - score, so some low-scoring documents stay (classifier_low either way).
    """
    threshold: float = Field(0.5, ge=0, le=1)
    """Documents scoring lower are removed (mode threshold)."""
    pareto_alpha: float = Field(9.0, gt=0)
    """GPT-3's alpha (mode pareto): larger keeps fewer low-scoring documents."""

    @model_validator(mode="after")
    def _labels(self) -> ClassifierConfig:
        if not self.positive_label.startswith("__label__"):
            raise ValueError(f"positive_label {self.positive_label!r} must start with __label__ (fastText's prefix)")
        if not self.model and self.positive_label == NEGATIVE_LABEL:
            raise ValueError(f"positive_label {NEGATIVE_LABEL} is the label of a trained model's negatives")
        return self


class ToxicityConfig(Section):
    """
    Toxicity stage (pipeline/toxicity): an offensive-language model scores every line of a document in a
    scored language; the share of flagged lines decides (docs/model_filters.md).
    """

    enabled: bool = False
    """
    Off by default: the model flags rude words in quotes, plays and fiction as well as abuse (Tiny Shakespeare:
    bench/results/toxicity.md); the keyword filter (quality.keywords) runs in every build.
    """
    languages: list[Literal["en"]] = Field(default_factory=lambda: ["en"])
    """
    Languages the model scores (the `lang` column of the quality stage; every document without one). The
    model (alt-profanity-check) is English; other languages keep the keyword filter.
    """
    line_threshold: float = Field(0.5, ge=0, le=1)
    """A line whose offensive probability is higher is flagged."""
    max_flagged_share: float = Field(0.1, ge=0, le=1)
    """Documents with a larger share of flagged lines are removed (toxic)."""


class MinHashConfig(Section):
    """MinHash-LSH near-duplicate detection (datasketch): shingles, signatures, LSH bands."""

    enabled: bool = True
    """Near-duplicate detection by MinHash-LSH (containment needs it too)."""
    num_perm: int = Field(128, ge=16, le=1024)
    """MinHash permutations per signature: more estimate Jaccard more finely, at more cost."""
    shingle: Literal["word", "char"] = "char"
    """
    Word or character n-grams. Character 7-grams: a respelling every few words (orthography reforms, dropped
    diacritics) leaves word 5-grams few shared shingles, character 7-grams most of them
    (bench/results/dedup_grid.md, docs/dedup.md).
    """
    ngram: int = Field(7, ge=1, le=20)
    """shingle length in words or characters."""
    strip_diacritics: bool = True
    """Shingles drop accents (as datatrove and CCNet do) and format characters (soft hyphen, ZWJ)."""
    threshold: float = Field(0.8, gt=0, lt=1)
    """Jaccard similarity that counts as a duplicate."""
    false_negative_weight: float = Field(0.8, gt=0, lt=1)
    """
    LSH bands x rows minimise (1 - w) * P(false positive) + w * P(false negative). Candidates are verified by
    estimated Jaccard, so a spurious candidate costs only time and a miss costs a duplicate: weigh misses more
    (0.5 = datasketch's default balance).
    """
    seed: int = Field(1, ge=0)
    """Seed of the MinHash permutations; signatures compare only under one seed."""

    @model_validator(mode="after")
    def _bandable(self) -> MinHashConfig:
        # datasketch's LSH refuses fewer than two bands, which a high threshold with few
        # permutations asks for (16 at 0.95, 32 at 0.98): refused here, before any work starts.
        from pipeline.dedup.lsh import lsh_params

        try:
            lsh_params(self.threshold, self.num_perm, self.false_negative_weight)
        except ValueError:
            raise ValueError(
                f"num_perm {self.num_perm} is too few for threshold {self.threshold} (false_negative_weight "
                f"{self.false_negative_weight}): LSH needs at least 2 bands; raise num_perm or lower threshold"
            ) from None
        return self


class LinesConfig(Section):
    """Line-level dedup: lines in many documents (banners, navigation, footers) are boilerplate."""

    enabled: bool = True
    """Remove boilerplate lines."""
    max_documents: int = Field(10, ge=1)
    """
    A normalised line found in more documents than this (after document dedup) is removed from all of them. 10
    at sample_data's ~7.5k documents: a line in >0.13% of the corpus. Scale it with the corpus (CCNet counts
    per ~5 GB shard).
    """
    min_line_chars: int = Field(30, ge=1)
    """
    Only lines this long (normalised characters) can be boilerplate: cookie banners and footers are (cc_docs:
    45-55), while play speaker tags ("KING RICHARD III:") and quote attributions ("-- Seneca") repeat across
    thousands of real documents and must stay.
    """
    sentence_spans: bool = True
    """
    Spans of three consecutive sentences of a line count too (boilerplate glued to a page's own text on one
    line); a span is removed sentence by sentence, its line's other sentences stay.
    """
    min_words: int = Field(50, ge=0)
    """
    A document left with fewer words is dropped (dedup_lines_too_short); Gopher's min_words, which every
    document met before its boilerplate went.
    """


class DedupConfig(Section):
    """Dedup stage: exact, near-duplicate (MinHash-LSH), containment and boilerplate-line dedup."""

    enabled: bool = True
    """Run the dedup stage."""
    exact: bool = True
    """exact match on normalised text (NFKC, case, whitespace)."""
    minhash: MinHashConfig = Field(default_factory=MinHashConfig)
    containment: bool = True
    """
    Partial copies (datasketch MinHashLSHEnsemble): a document whose shingles lie at least this share inside a
    longer one is removed as `contained_in` (needs minhash.enabled).
    """
    containment_threshold: float = Field(0.85, gt=0, le=1)
    """
    0.85, not 0.8: with character 7-grams two versions of one text in neighbouring languages or orthographies
    (Serbian / Bosnian UDHR) reach containment 0.8 without being copies.
    """
    partial_copy_threshold: float = Field(0.5, gt=0, le=1)
    """
    Edited partial copies (passages cut from a longer document and lightly revised): containment that suffices
    for a document of 800+ characters inside one 1.5x its size or more (pipeline/dedup/containment.py;
    measured in bench/results/dedup_quality.md and dedup_grid.md); 1 = off.
    """
    containment_max_documents: int = Field(200_000, ge=0)
    """
    Containment holds every cluster representative's MinHash in one process (datasketch's ensemble is in
    memory); a build with more documents skips it (docs/dedup.md).
    """
    cluster_partition_rows: int = Field(1_000_000, ge=1)
    """
    The clustering step's memory bound: with more documents than this (or on a Dask cluster), it runs as tasks
    that each hold about this many band keys or links (pipeline/dedup/distributed.py), on the cluster or in a
    local pool; fewer documents cluster in one process. Not with containment in effect or an index.
    """
    lines: LinesConfig = Field(default_factory=LinesConfig)
    index: str = ""
    """
    Folder of the index of documents earlier builds kept (pipeline/dedup/index.py); "" = off. Documents found
    there are removed as `duplicate_of_earlier_build`, and this build's kept documents are appended to it.
    """
    source_priority: list[str] = []
    """
    When copies fall in different sources, the copy kept comes from the source named first here; [] = the
    order of `sources`. Sources not named rank after those named, in their order.
    """


class DecontaminationConfig(Section):
    """
    Decontamination stage (pipeline/decontamination): documents sharing a word n-gram with an evaluation
    benchmark item are removed (or have the span cut), and training documents are checked against the
    validation documents the same way (docs/model_filters.md).
    """

    enabled: bool = False
    """Off by default: a build names its benchmarks (and the validation check reads every document twice)."""
    benchmarks: str = ""
    """
    Folder of evaluation sets, one file per benchmark (`<name>.jsonl` or `<name>.parquet`); "" = none (the
    validation check only).
    """
    text_fields: list[str] = []
    """
    Fields of a benchmark item whose text is checked, joined in this order (e.g. [question, answer]); [] = every
    string or list-of-strings field of the item.
    """
    ngram: int = Field(13, ge=3, le=50)
    """Words per n-gram: GPT-3's 13 (lower case, punctuation removed, split on whitespace)."""
    action: Literal["remove", "cut"] = "remove"
    """
    remove: the document goes (contaminated); cut: each matching span and `cut_window` characters on either
    side are cut out, as GPT-3's and lm-eval's decontamination do, and what is left is kept when long enough.
    """
    cut_window: int = Field(200, ge=0)
    """Characters cut on either side of a matching span (action cut)."""
    min_piece_chars: int = Field(200, ge=0)
    """Pieces left between cuts that are shorter are dropped too (action cut)."""
    max_spans: int = Field(10, ge=1)
    """A document with more matching spans is removed whole (action cut): it is mostly benchmark text."""
    min_chars_left: int = Field(500, ge=0)
    """A cut document left shorter is removed (contaminated)."""
    validation: Literal["off", "report", "remove"] = "report"
    """
    Training documents that share an n-gram with a validation document (the tokenizer's seeded split by id):
    report counts them; remove also removes them (validation_overlap).
    """
    index_partitions: int = Field(16, ge=1, le=4096)
    """
    The n-gram index is sorted in this many partitions by hash, each sorted alone, so building it needs
    1/partitions of its size in memory; workers memory-map it.
    """


class PrivacyConfig(Section):
    """
    Privacy stage: presidio finds PII, each hit is replaced by a typed placeholder such as <EMAIL_ADDRESS>.
    """

    enabled: bool = True
    """Run the privacy stage."""
    entities: list[str] = Field(
        default_factory=lambda: [
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "IP_ADDRESS",
            "US_SSN",
            "MAC_ADDRESS",
            "STREET_ADDRESS",
            "SECRET",
            "PERSON",
        ]
    )
    """presidio entity names to replace; also LOCATION, NRP, URL, ..."""
    min_score: float = Field(0.4, ge=0, le=1)
    """presidio score below which a hit is ignored."""
    entity_min_scores: dict[str, float] = {}
    """Per-entity thresholds that replace min_score for that entity, e.g. {PERSON: 0.85}."""
    allow_list: list[str] = Field(
        default_factory=lambda: [
            r"[\w.+-]+@(?:[\w-]+\.)*example\.(?:com|org|net)",
            r"(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}",
            r"(?i:2001:db8:[0-9a-f:]*)",
            r"127\.0\.0\.1|::1",
            r"8\.8\.8\.8|8\.8\.4\.4|1\.1\.1\.1|1\.0\.0\.1|9\.9\.9\.9",
        ]
    )
    """
    Detected values matching one of these regexes in full are left in place: documentation addresses and IP
    ranges (RFC 2606, 5737, 3849), loopback and public DNS resolvers.
    """
    ner_languages: list[Literal["en"]] = Field(default_factory=lambda: ["en"])
    """
    NER (PERSON) needs a spaCy model; it runs on documents in these languages only. The languages with a model
    are pipeline/privacy/engine.py NER_MODELS (English); the pattern recognizers (email, phone, card, IBAN,
    IP, SSN) run on every document.
    """
    ner_mode: Literal["exact", "windows"] = "exact"
    """
    exact: spaCy's NER reads every document whole. windows: it reads only a few tokens around each word that
    can be part of a name (a capitalised word, any word of a sentence without capitals; documents under 64
    tokens whole) and its entities go back at their exact offsets: far less NER, slightly different PERSON
    detections (pipeline/privacy/name_windows.py; recall and speed in bench/results/privacy_speed.md).
    Pattern recognizers read every document whole in both modes.
    """


class TokenizerConfig(Section):
    """Tokenizer stage: byte-level BPE training (HF tokenizers), then token shards in llm.c's format."""

    enabled: bool = True
    """Run the tokenizer stage (training and encoding)."""
    vocab_size: int = Field(8192, ge=300, le=2**32)
    """<= 65,536: tokens stored as uint16 (llm.c version 1); larger: uint32 (version 2)."""
    min_frequency: int = Field(2, ge=1)
    """A merge must occur at least this often in the training text."""
    pre_tokenizer: Literal["gpt2", "gpt4"] = "gpt2"
    """gpt4: numbers split into runs of <= 3 digits."""
    special_tokens: list[str] = []
    """extra control tokens, after <|endoftext|> and the placeholders."""
    sample_bytes: int = Field(1_000_000_000, ge=0)
    """
    Train on at most this many UTF-8 bytes of text: a seeded sample of the documents, split over the sources
    by their weights (a source with less than its share gives all it has); 0 = train on everything. Encoding
    covers every document whatever the sample.
    """
    max_bytes_per_language: int = Field(0, ge=0)
    """
    Language balance: cap each language's training text at about this many UTF-8 bytes (seeded sample of its
    documents; needs a `lang` column); 0 = train on everything.
    """
    val_fraction: float = Field(0.05, gt=0, lt=1)
    """share of documents held out for validation."""
    batch_size: int = Field(1000, ge=1)
    """documents per batch when streaming text."""
    train_tokens: int = Field(0, ge=0)
    """
    Training tokens the mixture holds (sources' documents repeated or subsampled to their shares); 0 = as
    many as the sources hold after filtering, one pass each.
    """


# Model sizes and the rates that go with them, picked by measurement (bench/pretrain_shakespeare.py
# for tiny). A preset fills the keys a config leaves out; keys written out win.
PRETRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # A few CPU minutes. Of 4 x 128 (vocab 512/1024/2048, lr 2e-3/4e-3) and 2 x 192 given equal
    # CPU time, 2 x 192 reached the lowest bits per byte: half the layers means half the small
    # ops per token, so more tokens per CPU second at the same parameter count (bench/results/pretrain_shakespeare.md).
    "tiny": dict(
        n_layer=2,
        n_head=6,
        n_embd=192,
        block_size=128,
        batch_size=8,
        batch_tokens=0,
        learning_rate=2e-3,
        warmup_steps=30,
        compile=False,
    ),
    # GPT-2 124M's shape (llm.c / nanoGPT recipe: 0.5M-token batches, lr 6e-4, 700 warm-up
    # steps) for one GPU; raise max_steps and time_budget_s to train for hours.
    "small": dict(
        n_layer=12,
        n_head=12,
        n_embd=768,
        block_size=1024,
        batch_size=16,
        batch_tokens=2**19,
        learning_rate=6e-4,
        warmup_steps=700,
        compile=True,
    ),
}


class PretrainConfig(Section):
    """Defaults are the tiny preset, sized for the 2-core CPU (300 steps of 8 x 128 tokens)."""

    enabled: bool = True
    """Run the pretraining stage."""
    preset: Literal["tiny", "small"] = "tiny"
    """tiny (a few CPU minutes) or small (GPT-2 124M's shape, one GPU); fills the keys a config leaves out."""
    n_layer: int = Field(2, ge=1)
    """Transformer blocks."""
    n_head: int = Field(6, ge=1)
    """Attention heads per block."""
    n_embd: int = Field(192, ge=8)
    """Width of the residual stream (a multiple of 2 * n_head)."""
    block_size: int = Field(128, ge=8)
    """Context length in tokens."""
    batch_size: int = Field(8, ge=1)
    """sequences per forward pass (micro-batch)."""
    batch_tokens: int = Field(0, ge=0)
    """
    Tokens per optimizer step, reached by accumulating gradients over micro-batches; 0 = one micro-batch
    (batch_size * block_size). Else a multiple of batch_size * block_size.
    """
    learning_rate: float = Field(2e-3, gt=0)
    """peak; cosine-decays to a tenth by max_steps."""
    warmup_steps: int = Field(30, ge=0)
    """linear warm-up from 0 to learning_rate."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW weight decay, on weights of two or more dimensions only."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """
    nanoGPT-style dropout (attention weights, attention and MLP outputs), training only. Off by default: one
    pass over a large deduplicated corpus sees each token about once, so there is nothing to memorise, and
    modern LLM pretraining uses none (LLaMA; nanoGPT's own comment: "for pretraining 0 is good"). 0.2 pays on
    many epochs of a small text such as Tiny Shakespeare (bench/results/pretrain_shakespeare.md).
    """
    max_steps: int = Field(300, ge=1)
    """Optimizer steps; training stops at this or at time_budget_s."""
    time_budget_s: float = Field(150.0, gt=0)
    """wall-clock budget; training stops at either limit."""
    eval_interval: int = Field(100, ge=1)
    """also the checkpoint interval."""
    eval_batches: int = Field(10, ge=1)
    """Validation batches per evaluation (the same windows every time)."""
    objective: Literal["causal", "prefix_lm"] = "causal"
    """
    causal: every token predicted from the ones before it. prefix_lm: the survey's prefix decoder: each
    training sequence gets a seeded prefix length, uniform in [0, block_size), attended in both directions;
    the loss covers the target part only. Validation reads every model causally, so bits per byte compare.
    """
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """bf16 autocast on cuda, fp32 on cpu; auto = cuda when torch sees one."""
    compile: bool = False
    """torch.compile: faster steps after a one-off compile."""
    peak_flops: float = Field(0.0, ge=0)
    """
    Peak FLOP/s for the MFU estimate; 0 = the bf16 dense peak of a known GPU, or 80 GFLOP/s per CPU thread
    (AVX2: 2 FMA units x 8 fp32 lanes x 2 FLOPs x 2.5 GHz).
    """
    resume: bool = False
    """
    Continue from model/ckpt.pt (model, optimizer, data position, RNG states) instead of starting over;
    `corpus build --resume` sets it.
    """
    processes: int = Field(1, ge=1)
    """
    Data-parallel training processes (DDP) on this machine, launched with torchrun: gloo between CPU
    processes, nccl between GPUs (one per process). The global batch stays batch_tokens (or one micro-batch),
    split over the processes, so the loss curve is one process's; processes must divide the micro-batches
    per step or batch_size (docs/pretraining.md).
    """
    threads: int = Field(0, ge=0)
    """
    torch intra-op threads; 0 = every core this process may use (its share of them with several processes).
    On a machine shared with other busy processes, 1 can be many times faster: threads that wait on each
    other at every op stall whenever one of them is descheduled.
    """

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = PRETRAIN_PRESETS.get(data.get("preset", "tiny"), {})
            data = preset | data
        return data

    @model_validator(mode="after")
    def _shapes_fit(self) -> PretrainConfig:
        # Each head gets n_embd/n_head dimensions, rotated in pairs by the rotary embedding.
        if self.n_embd % (2 * self.n_head):
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of 2*n_head ({2 * self.n_head})")
        if self.batch_tokens % (self.batch_size * self.block_size):
            raise ValueError(
                f"batch_tokens ({self.batch_tokens}) must be a multiple of batch_size*block_size "
                f"({self.batch_size * self.block_size})"
            )
        if self.grad_accum_steps % self.processes and self.batch_size % self.processes:
            raise ValueError(
                f"processes ({self.processes}) must divide the micro-batches per step ({self.grad_accum_steps}) "
                f"or batch_size ({self.batch_size})"
            )
        return self

    @property
    def grad_accum_steps(self) -> int:
        """Micro-batches per optimizer step."""
        return max(1, self.batch_tokens // (self.batch_size * self.block_size))


class ReportConfig(Section):
    """Report stage: report/report.html, stats.json and the charts."""

    enabled: bool = True
    """Write the report."""


SOURCE_KINDS = ("web", "books", "wiki", "code", "forum", "other")


class SourceConfig(Section):
    """One source of a corpus: its input, the preset of stage settings its kind picks, its own
    overrides, and its target share of training tokens (docs/sources.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """The source's name: the `source` column of its documents, its rows in the manifest and report."""
    input: str | list[str]
    """Folder, glob, file or fsspec URL of its shards (Parquet or JSON Lines), or a list of them."""
    kind: Literal["web", "books", "wiki", "code", "forum", "other"] = "other"
    """Picks a preset of stage settings for its documents (pipeline/sources.py, docs/sources.md)."""
    weight: float = Field(1.0, gt=0)
    """Target share of training tokens; the weights of all sources are normalised to sum to 1."""
    max_epochs: float = Field(4.0, gt=0)
    """
    The most times its training documents may be repeated to reach its share: a source that cannot is
    capped (the shortfall is reported) and the others fill the rest. Up to about four epochs of repeated
    data train almost as well as fresh data (Muennighoff et al. 2023, "Scaling Data-Constrained Language
    Models").
    """
    overrides: dict[str, Any] = {}
    """
    Settings of filter stages for this source only, over its kind's preset, e.g. {quality: {gopher:
    {min_words: 20}}}. Build-wide steps (the reference model, dedup's clustering) use the build's own
    sections.
    """


class VariantConfig(Section):
    """A corpus variant of an ablation (`corpus ablate`, docs/ablations.md): a stage's documents,
    changed or not, in a mixture."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """The variant's name: its folder under ablations/ and its row in the results."""
    stage: str
    """`raw` (the input as the first text stage read it), or a filter stage whose kept documents it starts from."""
    set: dict[str, Any] = {}
    """
    Settings of that stage changed (dotted keys, e.g. {gopher.min_words: 20}): its decision is taken again
    from the columns it wrote, without rerunning it (a stage that declares `redecide`). {enabled: false}: the
    stage's input, its documents without it.
    """
    restore: list[str] = []
    """Removal reasons of that stage whose removed documents come back (a rule switched off)."""
    where: str = ""
    """`COLUMN OP NUMBER` (OP one of < <= > >= == !=) its documents must meet, e.g. `quality_words >= 100`."""
    weights: dict[str, float] = {}
    """Source -> mixture weight instead of the build's (sources left out keep theirs)."""


class AblateConfig(Section):
    """`corpus ablate`: the compact model trained on variants of the corpus at an equal token budget."""

    variants: list[str] = []
    """Variants to train, by name; [] = raw, every text stage that ran, and every one defined below."""
    define: list[VariantConfig] = []
    """More variants: a stage's settings changed, reasons restored, a column condition, other weights."""
    tokens: int = Field(0, ge=0)
    """Training tokens per run; 0 = the build's own pretraining budget (max_steps x tokens per step)."""
    seeds: int = Field(3, ge=1)
    """Runs per variant, seeded seed, seed+1, ...: the spread a difference must exceed."""
    eval: str = ""
    """
    Folder or file of held-out text (*.txt, one document a file; Parquet or JSON Lines with a text column);
    "" = the build's own validation split.
    """


class ServiceConfig(Section):
    """`corpus serve`: the scheduled, incremental `corpus-build` deployment (flows/serve.py)."""

    cron: str = "0 2 * * *"
    """when scheduled builds start (cron, UTC); nightly at 02:00."""
    input: str = "sample_data"
    """folder, glob or fsspec URL that new shards arrive in (when `sources` is [])."""
    sources: list[SourceConfig] = []
    """
    The scheduled build's sources, shaped as the top-level `sources` (docs/sources.md), each `input` where
    its new shards arrive; each build holds the sources with new files. [] = `input`, as one source. The
    top-level `sources` are not used by scheduled builds.
    """
    out: str = "build/scheduled"
    """one build-NNNN folder per scheduled run, and the dedup index."""
    stages: list[str] = []
    """Stages of a scheduled build; [] = all."""
    overlap: Literal["skip", "wait"] = "skip"
    """
    A run that starts while a build into `out` is still running: `skip` ends it at once, as Completed named
    Skipped, with the running build in its message; `wait` waits for that build to end, then goes on.
    """

    def inputs(self, input: str | None = None) -> dict[str, str | list[str]]:
        """The scheduled build's sources, name -> input: `sources`, or `input` (this section's
        unless given) as the one source."""
        from pipeline.sources import INPUT_SOURCE

        return {source.name: source.input for source in self.sources} or {INPUT_SOURCE: input or self.input}

    @field_validator("stages")
    @classmethod
    def _registered(cls, stages: list[str]) -> list[str]:
        from pipeline.stages import registry

        for name in stages:
            if name not in registry.names():
                raise ValueError(f"unknown stage {name!r}; choose from {','.join(registry.names())}")
        return stages


class ShardsConfig(Section):
    """How the build's text input is cut into shards, the unit of per-shard work
    (pipeline/shard_plan.py): large files split, tiny ones merged, so that every worker has work.
    The plan depends on these and on the worker count; outputs sorted by id do not."""

    target_mb: float = Field(64, gt=0)
    """Largest shard, in MB of uncompressed data (Parquet row groups' size): bounds a job's memory."""
    per_worker: int = Field(8, ge=1)
    """
    Shards wanted per worker when the input allows: a file is split into shards of the input over
    per_worker × workers (but no smaller than min_mb), and tiny files are merged into shards of
    that size at most. Several per worker even out shards that cost more than their bytes (the
    privacy stage's NER runs on English documents only).
    """
    min_mb: float = Field(0.25, gt=0)
    """Smallest shard made by splitting a file, and the size tiny files are merged up to."""


class BuildConfig(Section):
    """A whole build: global settings, then one section per registered stage, under the stage's
    name and validated by its config model (pipeline/stages.py). Sections are not fields: the
    registry, not this class, says which stages exist, so a stage added by a plugin brings its
    own section. `cfg.quality` reads a section like an attribute."""

    # Sections arrive as extra keys; the validator below admits only registered stages' ones.
    model_config = ConfigDict(extra="allow", validate_assignment=True)

    seed: int = Field(1337, ge=0)
    """Seeds the train/val split, model init and batch sampling."""
    workers: int = Field(0, ge=0)
    """Processes for per-shard work; 0 = all cores (the CLI's --workers wins)."""
    dask_address: str = ""
    """A Dask scheduler (tcp://HOST:PORT) to run per-shard work on instead of local processes."""
    dask_worker_timeout_s: float = Field(300, gt=0)
    """How long a build waits while its Dask cluster has no worker before it fails."""
    plugins: list[str] = []
    """
    Modules imported before the stage sections are read, so that the stages they register
    (pipeline.stages.register) exist in every process that reads this config.
    """
    sources: list[SourceConfig] = []
    """
    The corpus's sources, in priority order (dedup keeps the copy of the first, unless
    dedup.source_priority says otherwise); [] = one source named `input`, from --input.
    """
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    ablate: AblateConfig = Field(default_factory=AblateConfig)

    shards: ShardsConfig = Field(default_factory=ShardsConfig)

    @model_validator(mode="wrap")
    @classmethod
    def _stage_sections(cls, data: Any, handler: Any) -> BuildConfig:
        """Each registered stage's section validated by its own model (defaults when absent),
        in registry order; an unknown section is an error naming it."""
        if not isinstance(data, dict):
            return handler(data)
        _import_plugins(data.get("plugins", []))
        from pipeline.stages import registry

        data = dict(data)
        errors: list[InitErrorDetails] = []
        names = registry.names()
        for key, value in data.items():
            if key not in cls.model_fields and key not in names:
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(key,), input=value))
        for stage in registry:
            section = data.pop(stage.name, {})
            try:
                data[stage.name] = (
                    section if isinstance(section, stage.config) else stage.config.model_validate(section)
                )
            except ValidationError as exc:
                errors += [
                    InitErrorDetails(
                        type=e["type"], loc=(stage.name, *e["loc"]), input=e["input"], ctx=e.get("ctx", {})
                    )
                    for e in exc.errors()
                ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return handler(data)

    @model_validator(mode="after")
    def _sources_fit(self) -> BuildConfig:
        _check_sources(self, "")
        if self.service.sources:  # the scheduled builds' sources, checked as their builds will take them
            scheduled = {"sources": self.service.sources, "service": self.service.model_copy(update={"sources": []})}
            _check_sources(self.model_copy(update=scheduled), "service.sources: ")
        return self

    def section(self, stage: str) -> Section:
        return getattr(self, stage)

    def runs(self, stage: str) -> bool:
        """Whether a stage runs: its section is on for the build or for one of the sources (a
        source's override can switch a filter stage on for its documents alone)."""
        if self.section(stage).enabled:
            return True
        return any(self.for_source(source.name).section(stage).enabled for source in self.sources)

    def worker_count(self, workers: int = 0) -> int:
        """The processes a build runs shard jobs in: `workers` (the CLI's), else the config's,
        else every core. The shard plan depends on it."""
        return workers or self.workers or os.cpu_count() or 1

    def for_source(self, name: str) -> BuildConfig:
        """This config as it applies to one source's documents: the source's kind preset and its
        overrides over the build's stage sections (pipeline/sources.py)."""
        from pipeline.sources import source_config

        return source_config(self, name)

    def section_hash(self, section: str) -> str:
        """Hash of one section plus the global seed: a change re-runs only that stage."""
        payload = {"seed": self.seed, section: self.section(section).model_dump(mode="json")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _check_sources(cfg: BuildConfig, where: str) -> None:
    """`cfg.sources` fit the build: distinct names, a dedup priority over them, overrides that
    validate (a bad one fails naming its source)."""
    names = [source.name for source in cfg.sources]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise ValueError(f"{where}two sources are named {repeated!r}; give each source its own name")
    dedup = getattr(cfg, "dedup", None)
    unknown = [name for name in getattr(dedup, "source_priority", []) if cfg.sources and name not in names]
    if unknown:
        raise ValueError(
            f"{where}dedup.source_priority names {unknown[0]!r}, which is none of the sources ({', '.join(names)})"
        )
    positive = getattr(getattr(cfg, "classifier", None), "positive_source", "")
    if positive and cfg.sources and positive not in names:
        raise ValueError(
            f"{where}classifier.positive_source names {positive!r}, which is none of the sources ({', '.join(names)})"
        )
    for source in cfg.sources:
        try:
            cfg.for_source(source.name)  # a bad override fails here, naming the source
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ValueError(
                f"{where}source {source.name!r} (kind {source.kind}): {key}: {first['msg']} (got {first.get('input')!r})"
            ) from None
        except ValueError as exc:  # an override of a section that cannot differ per source
            raise ValueError(f"{where}{exc}") from None


def changed_keys(before: BaseModel, after: BaseModel) -> list[str]:
    """The dotted keys whose values differ between two configs of one model (a mapping field's
    entries key by key, e.g. `repetition.max_top_ngram_char_fraction.2`)."""
    old, new = _flat(before.model_dump(mode="json")), _flat(after.model_dump(mode="json"))
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _import_plugins(modules: Any) -> None:
    for module in modules if isinstance(modules, list) else []:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InputError(f"plugins: cannot import {module!r} ({exc}). Install it or fix the module name.") from None


def _set_dotted(data: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise InputError(f"--set {dotted}={raw}: {key} is not a section")
    # YAML parsing turns "0.5" into a float, "[en, de]" into a list, "true" into a bool.
    node[keys[-1]] = yaml.safe_load(raw) if raw != "" else ""


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, recorded: dict[str, Any] | None = None
) -> BuildConfig:
    """Read a YAML config (optional; or start from a finished build's `recorded` config), apply
    `section.key=value` overrides, validate."""
    data: dict[str, Any] = dict(recorded or {})
    source = "the build's recorded config" if recorded is not None else "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read config ({exc.strerror}). Check the path.") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}).") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}.")
    for item in overrides or []:
        if "=" not in item:
            raise InputError(f"--set {item}: expected section.key=value, e.g. --set dedup.minhash.threshold=0.7")
        dotted, raw = item.split("=", 1)
        _set_dotted(data, dotted.strip(), raw.strip())
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not key:  # a rule across keys (two sources with one name): the message names them
            raise InputError(f"{source}: {message}. See docs/config.md.") from None
        raise InputError(
            f"{source}: config key {key!r}: {message} (got {first.get('input')!r}). See docs/config.md."
        ) from None

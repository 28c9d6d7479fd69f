"""The registry: every stage of a build declared once, in the order a build runs them.

Flows, job dispatch, the manifest and its conservation check, `--stages`, the CLI summary, the
report and the service all read this list; no other list of stage names exists. A stage
declaration (pipeline/stage.py) names its config model, its steps and its reasons; step
functions are `Ref`s, imported when a step first runs, so reading the registry is cheap.

A new stage is one module with its step functions and one `Stage` here, or, without touching
the project, `register(stage, after="dedup")` from a module named in the config's `plugins`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline import config as cfg
from pipeline.errors import InputError
from pipeline.shards import WEB
from pipeline.stage import BuildStep, Ref, ReportSection, ShardStep, Stage

EXTRACT = Stage(
    name="extract",
    config=cfg.ExtractConfig,
    description="Raw web (WARC/WET, HTML tables) to main text: HTTP 200 HTML pages through trafilatura or resiliparse.",
    raw_input=WEB,
    steps=(
        ShardStep(
            "extract_fetches", Ref("pipeline.extract.stage:fetch_shard"), "extract: fetches", "files", reads="raw"
        ),
        BuildStep(
            "extract_selection",
            Ref("pipeline.extract.stage:select"),
            "extract: duplicate URLs",
            when=lambda section: section.drop_duplicate_urls or section.max_docs_per_domain > 0,
        ),
        ShardStep("extract", Ref("pipeline.extract.stage:extract_shard"), "extract: main text", reads="raw"),
    ),
    reasons=(
        "http_status",
        "not_html",
        "url_blocklist",
        "too_large",
        "duplicate_url",
        "domain_cap",
        "decode_error",
        "empty_extraction",
    ),
    funnel=Ref("pipeline.extract.stage:stage_funnel"),
    report=(
        ReportSection(
            "extraction",
            "Extraction",
            Ref("pipeline.stats.report:extraction"),
            Ref("pipeline.stats.html:extraction"),
            Ref("pipeline.stats.report:extraction_charts"),
        ),
    ),
    color="#0891b2",
)

QUALITY = Stage(
    name="quality",
    config=cfg.QualityConfig,
    description="Language ID, keyword, heuristic (Gopher, C4, FineWeb) and perplexity filters.",
    steps=(
        BuildStep(
            "reference_lm",
            Ref("pipeline.quality.stage:train_reference_lm"),
            "quality: reference LM",
            when=lambda section: section.perplexity.enabled,
        ),
        ShardStep("quality", Ref("pipeline.quality.stage:run_shard"), "quality filter"),
    ),
    reasons=(
        "empty_text",
        "doc_too_long",
        "lang_not_kept",
        "lang_low_score",
        "url_blocklist",
        "keyword_share",
        "gopher_short_doc",
        "gopher_long_doc",
        "gopher_mean_word_length_low",
        "gopher_mean_word_length_high",
        "gopher_symbol_ratio",
        "gopher_bullet_lines",
        "gopher_ellipsis_lines",
        "gopher_alpha_words",
        "gopher_stop_words",
        "gopher_dup_lines",
        "gopher_dup_paragraphs",
        "gopher_dup_line_chars",
        "gopher_dup_para_chars",
        "gopher_top_*_gram",
        "gopher_dup_*_gram",
        "c4_lorem_ipsum",
        "c4_curly_bracket",
        "c4_no_lines_left",
        "c4_too_few_sentences",
        "fineweb_empty",
        "fineweb_line_punct_ratio",
        "fineweb_short_line_ratio",
        "fineweb_char_dup_ratio",
        "fineweb_list_ratio",
        "perplexity_tail",
    ),
    report=(
        ReportSection(
            "languages",
            "Languages",
            Ref("pipeline.stats.report:languages"),
            Ref("pipeline.stats.html:languages"),
            Ref("pipeline.stats.report:languages_charts"),
        ),
        ReportSection(
            "signals",
            "Quality signals",
            Ref("pipeline.stats.report:signals"),
            Ref("pipeline.stats.html:signals"),
            Ref("pipeline.stats.report:signals_charts"),
        ),
    ),
    color="#2563eb",
)

DEDUP = Stage(
    name="dedup",
    config=cfg.DedupConfig,
    description="Exact, MinHash-LSH near-duplicate and containment dedup across all shards, then boilerplate lines.",
    steps=(
        ShardStep(
            "dedup_signatures", Ref("pipeline.dedup.stage:signature_shard"), "dedup: MinHash signatures", writes="files"
        ),
        BuildStep("dedup_clusters", Ref("pipeline.dedup.stage:cluster"), "dedup: clustering"),
        ShardStep("dedup", Ref("pipeline.dedup.stage:apply_shard"), "dedup: apply"),
    ),
    reasons=(
        "exact_duplicate",
        "near_duplicate",
        "contained_in",
        "duplicate_of_earlier_build",
        "dedup_lines_too_short",
    ),
    report=(
        ReportSection(
            "duplicates",
            "Duplicates",
            Ref("pipeline.stats.report:duplicates"),
            Ref("pipeline.stats.html:duplicates"),
            Ref("pipeline.stats.report:duplicates_charts"),
        ),
    ),
    color="#d97706",
)

PRIVACY = Stage(
    name="privacy",
    config=cfg.PrivacyConfig,
    description="presidio PII detection; every hit replaced by a typed placeholder such as <EMAIL_ADDRESS>.",
    steps=(ShardStep("privacy", Ref("pipeline.privacy.scrubber:run_shard"), "privacy scrub"),),
    report=(
        ReportSection(
            "pii",
            "PII",
            Ref("pipeline.stats.report:pii"),
            Ref("pipeline.stats.html:pii"),
            Ref("pipeline.stats.report:pii_charts"),
        ),
    ),
    color="#059669",
)

TOKENIZER = Stage(
    name="tokenizer",
    config=cfg.TokenizerConfig,
    description="Byte-level BPE trained on the cleaned text, then every shard encoded to token shards.",
    folder="tokens",
    steps=(
        BuildStep("tokenizer_train", Ref("pipeline.tokenizer.train:train_step"), "tokenizer: train BPE"),
        ShardStep("encode", Ref("pipeline.tokenizer.encode:encode_step"), "tokenizer: encode shards", writes="files"),
    ),
    summarise=Ref("pipeline.tokenizer.stats:stage_summary"),
    headline=Ref("pipeline.tokenizer.stats:headline"),
    funnel=Ref("pipeline.tokenizer.stats:funnel_row"),
    report=(
        ReportSection(
            "tokenizer",
            "Tokenizer",
            Ref("pipeline.stats.report:tokenizer"),
            Ref("pipeline.stats.html:tokenizer"),
            Ref("pipeline.stats.report:tokenizer_charts"),
        ),
    ),
    color="#7c3aed",
)

PRETRAIN = Stage(
    name="pretrain",
    config=cfg.PretrainConfig,
    description="A compact GPT trained on the token shards for a step and wall-clock budget.",
    folder="model",
    # In the flow's process: it reports every step to the progress bar and the Prefect UI.
    steps=(BuildStep("pretrain", Ref("pipeline.train.stage:pretrain"), "pretrain GPT", unit="steps", isolated=False),),
    summarise=Ref("pipeline.train.stage:stage_summary"),
    headline=Ref("pipeline.train.stage:headline"),
    report=(
        ReportSection(
            "training",
            "Training",
            Ref("pipeline.stats.report:training"),
            Ref("pipeline.stats.html:training"),
            Ref("pipeline.stats.report:training_charts"),
        ),
    ),
    color="#db2777",
)

REPORT = Stage(
    name="report",
    config=cfg.ReportConfig,
    description="The corpus statistics report: report/report.html + report/stats.json.",
    # Last, in the flow's process: it reads the manifest as the other stages left it.
    steps=(BuildStep("report", Ref("pipeline.stats.report:report_step"), "report", isolated=False),),
)


class Registry:
    """The stages in build order; looked up by name, extended by `register`."""

    def __init__(self, stages: list[Stage]) -> None:
        self._stages = list(stages)

    def __iter__(self) -> Iterator[Stage]:
        return iter(list(self._stages))

    def names(self) -> list[str]:
        return [stage.name for stage in self._stages]

    def get(self, name: str) -> Stage:
        for stage in self._stages:
            if stage.name == name:
                return stage
        raise InputError(f"unknown stage {name!r}; choose from {','.join(self.names())}.")

    def filters(self) -> list[Stage]:
        """The stages that write documents, in order: each reads the previous one's output."""
        return [stage for stage in self._stages if stage.filters]

    def register(self, stage: Stage, *, after: str | None = None, before: str | None = None) -> None:
        """Add a stage after (or before) a registered one, or last before the report.
        Registering the same declaration again (a plugin module imported twice) is a no-op."""
        if stage in self._stages:
            return
        if stage.name in self.names():
            raise InputError(f"stage {stage.name!r} is already registered; give the new stage another name.")
        if stage.name in cfg.BuildConfig.model_fields:
            raise InputError(f"stage name {stage.name!r} is a build setting; give the stage another name.")
        if after is not None:
            position = self._stages.index(self.get(after)) + 1
        elif before is not None:
            position = self._stages.index(self.get(before))
        else:
            position = self._stages.index(REPORT) if REPORT in self._stages else len(self._stages)
        self._stages.insert(position, stage)

    def unregister(self, name: str) -> None:
        self._stages.remove(self.get(name))

    @contextmanager
    def registered(self, stage: Stage, **where: str) -> Iterator[Stage]:
        """The stage registered for the duration of the block (tests, notebooks)."""
        self.register(stage, **where)
        try:
            yield stage
        finally:
            self.unregister(stage.name)


registry = Registry([EXTRACT, QUALITY, DEDUP, PRIVACY, TOKENIZER, PRETRAIN, REPORT])
register = registry.register

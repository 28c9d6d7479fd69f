"""Sources: the named parts of a corpus, each with its kind's preset of stage settings.

A build's `sources` (config) name each source's input, kind, overrides and target share of
training tokens; a build from `--input` alone has one source, `input`. A source's documents are
judged with `BuildConfig.for_source(name)`: the build's stage sections, then its kind's preset,
then its own overrides, each deeper key replacing the one before. Only the sections of filter
stages (quality, dedup, privacy, ...) may differ per source; build-wide steps use the build's.

The presets follow what the peers do for each kind of text (docs/sources.md says why):
- web: C4's line cleaning and page rules and FineWeb's line statistics (FineWeb's pipeline), with
  the Gopher rules reading the cleaned text, as FineWeb's read extracted text (so a page's menus
  cannot fail it), and FineWeb's duplicated-line share at its paper's 0.1 (datatrove's 0.01 removes
  pages for a repeated teaser line); boilerplate lines removed (the default). On trafilatura's
  development pages as WET text this removes about twice the human-marked boilerplate of `other`
  and keeps as much of the main content (bench/results/web_preset.md).
- books: long documents kept (a book is far over the web limits), no line or n-gram repetition
  rules (verse, refrains and speaker names repeat on purpose; curated book sets such as dolma's
  and RedPajama's Gutenberg get no repetition filter), no C4 / FineWeb line rules.
- wiki: articles are edited text: stubs of 25 words or more kept (dolma's Wikipedia filter), no
  C4 / FineWeb line rules (lists and infobox lines do not end in punctuation).
- code: no prose rules and no language filter; The Stack / StarCoder's code rules instead (line
  length, mean line length, alphanumeric share, auto-generated files); no keyword filter, no
  perplexity (the reference model is prose), no boilerplate-line removal (imports and licence
  lines are code).
- forum: posts are short and informal: 20 words kept, no C4 line rules (posts often end without
  punctuation).
- other: the build's settings as they are.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import BuildConfig, SourceConfig
from pipeline.errors import InputError

INPUT_SOURCE = "input"  # the one source of a build given by --input

OFF = {"enabled": False}
PRESETS: dict[str, dict[str, Any]] = {
    "web": {
        "quality": {
            "c4": {"enabled": True},
            "fineweb": {"enabled": True, "max_char_dup_ratio": 0.1},
            "rules_on_cleaned_text": True,
        }
    },
    "books": {
        "quality": {
            "max_chars": 20_000_000,
            "gopher": {"max_words": 5_000_000},
            "repetition": OFF,
            "c4": OFF,
            "fineweb": OFF,
        }
    },
    "wiki": {"quality": {"gopher": {"min_words": 25}, "c4": OFF, "fineweb": OFF}},
    "code": {
        "quality": {
            "filter_languages": False,
            "gopher": OFF,
            "repetition": OFF,
            "c4": OFF,
            "fineweb": OFF,
            "keywords": OFF,
            "perplexity": OFF,
            "code": {"enabled": True},
        },
        "dedup": {"lines": OFF},
    },
    "forum": {"quality": {"gopher": {"min_words": 20}, "c4": OFF, "fineweb": OFF}},
    "other": {},
}


def build_sources(cfg: BuildConfig, input_spec: str | list[str] | None) -> list[SourceConfig]:
    """The build's sources: its config's, or one named `input` from --input."""
    if cfg.sources and input_spec:
        raise InputError("--input and the config's sources both name the input; give one of them.")
    if cfg.sources:
        return list(cfg.sources)
    if not input_spec:
        raise InputError("no input: pass --input (or --source NAME=PATH), or name sources in the config.")
    return [SourceConfig(name=INPUT_SOURCE, input=input_spec)]


def shares(sources: list[SourceConfig]) -> dict[str, float]:
    """Each source's target share of training tokens: its weight over the sum of weights."""
    total = sum(source.weight for source in sources)
    return {source.name: source.weight / total for source in sources}


def source_config(cfg: BuildConfig, name: str) -> BuildConfig:
    """`cfg` as it applies to source `name`'s documents (see the module docstring)."""
    source = next((s for s in cfg.sources if s.name == name), None)
    if source is None:  # the --input source, or a name the config does not know: the build's own
        return cfg
    from pipeline.stages import registry

    filters = {stage.name for stage in registry.filters()}
    layers = [PRESETS[source.kind], source.overrides]
    for layer in layers:
        for key in layer:
            if key not in filters:
                raise ValueError(
                    f"source {name!r}: {key!r} cannot differ per source; only the sections of filter stages "
                    f"({', '.join(sorted(filters))}) can"
                )
    data = cfg.model_dump(mode="json", exclude={"sources"})
    for layer in layers:
        data = merged(data, layer)
    return BuildConfig.model_validate(data)


def merged(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """`base` with `layer`'s keys over it, mappings merged key by key."""
    out = dict(base)
    for key, value in layer.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out

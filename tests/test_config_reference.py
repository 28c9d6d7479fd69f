"""docs/config.md is generated from the config models and must not go stale."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.config_reference import build_sections, render

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_committed_config_reference_is_the_one_the_models_generate():
    committed = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert committed == render(build_sections()), (
        "docs/config.md differs from the config models: regenerate it with `make docs` "
        "(.venv/bin/python -m pipeline.config_reference > docs/config.md) and commit it"
    )


class _Shingles(BaseModel):
    """How documents are cut into shingles."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    kind: Literal["word", "char"] = "char"
    """Word or character n-grams."""
    ngram: int = Field(7, ge=1, le=20)
    """Shingle length in words or characters."""


class _Dedup(BaseModel):
    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard similarity that counts as a duplicate.")
    languages: list[str] = Field(default_factory=lambda: ["en", "de"])
    shingles: _Shingles = Field(default_factory=_Shingles)


def test_reference_gives_each_key_its_type_default_bounds_and_description():
    page = render([("dedup", _Dedup)])
    assert "| `threshold` | `float` | `0.8` | > 0, < 1 | Jaccard similarity that counts as a duplicate. |" in page
    assert "| `languages` | `list[str]` | `[en, de]` |  |  |" in page
    # A nested model is a section of its own, introduced by its docstring.
    assert (
        "| `shingles` | section |  |  | [`dedup.shingles`](#dedupshingles) How documents are cut into shingles. |"
        in page
    )
    assert "## `dedup.shingles`\n\nHow documents are cut into shingles." in page
    # Attribute docstrings (use_attribute_docstrings=True) are descriptions too.
    assert '| `kind` | `"word" \\| "char"` | `char` |  | Word or character n-grams. |' in page
    assert "| `ngram` | `int` | `7` | >= 1, <= 20 | Shingle length in words or characters. |" in page


def test_a_section_listed_on_its_own_is_rendered_once_in_the_order_given():
    class Top(BaseModel):
        seed: int = 1
        dedup: _Dedup = Field(default_factory=_Dedup)

    page = render([("", Top), ("dedup", _Dedup)])
    assert page.count("## `dedup`") == 1
    assert page.index("## Top-level keys") < page.index("## `dedup`") < page.index("## `dedup.shingles`")
    assert "| `dedup` |" not in page

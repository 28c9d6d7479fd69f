"""The config reference (docs/config.md), generated from the pydantic models of pipeline/config.py.

    .venv/bin/python -m pipeline.config_reference > docs/config.md     # or: make docs

A section per model, a row per key: type, default, bounds (the ge/le/gt/lt of its Field) and
description. A description is the field's own (`Field(description=...)`, or the string literal
under the field with `use_attribute_docstrings=True`), else, for a nested section, the docstring
of its model. tests/test_config_reference.py fails when the committed page differs from this
output.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pipeline.config import BuildConfig
from pipeline.stages import registry

INTRO = """\
# Config reference

Generated from the pydantic models in `pipeline/config.py` by `make docs`
(`python -m pipeline.config_reference > docs/config.md`); do not edit by hand.

Every key has a default, so `--config FILE` is optional. The YAML file has the sections below,
nested as their names are dotted (`dedup.minhash.threshold` is `threshold:` under `minhash:` under
`dedup:`), and `--set dedup.minhash.threshold=0.7` overrides one key. Unknown keys, wrong types
and impossible values are rejected before any work starts, and the error names the key.
"""

BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)


def render(sections: list[tuple[str, type[BaseModel]]]) -> str:
    """The reference page: each (dotted name, model) in the order given, nested models below it.

    A nested model whose dotted name is itself in `sections` is left to its own entry, so a
    top-level model (name "") and its sections can be listed side by side, each rendered once.
    """
    listed = {name for name, _ in sections}
    parts = [INTRO]
    for name, model in sections:
        parts += _sections(name, model, listed)
    return "\n".join(parts)


def _sections(name: str, model: type[BaseModel], listed: set[str]) -> Iterator[str]:
    nested = []
    lines = [f"## {f'`{name}`' if name else 'Top-level keys'}", ""]
    if model.__doc__:
        lines += [_one_line(model.__doc__), ""]
    lines += ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    for key, field in model.model_fields.items():
        path = f"{name}.{key}" if name else key
        if _is_model(field.annotation):
            if path in listed:
                continue
            nested.append((path, field.annotation))
            cells = ["section", "", "", f"[`{path}`](#{path.replace('.', '')}) " + _description(field)]
        else:
            cells = [f"`{_type_name(field.annotation)}`", f"`{_default(field)}`", _bounds(field), _description(field)]
        lines.append("| " + " | ".join([f"`{key}`", *(_cell(c) for c in cells)]) + " |")
    yield "\n".join(lines) + "\n"
    for path, child in nested:
        yield from _sections(path, child, listed)


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _description(field: FieldInfo) -> str:
    if field.description:
        return _one_line(field.description)
    if _is_model(field.annotation) and field.annotation.__doc__:
        return _one_line(field.annotation.__doc__)
    return ""


def _type_name(annotation: object) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(_type_name, args))}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    return yaml.safe_dump(value, default_flow_style=True, width=float("inf")).removesuffix("\n...\n").strip()


def _bounds(field: FieldInfo) -> str:
    return ", ".join(
        f"{sign} {getattr(m, attr)}" for m in field.metadata for kind, attr, sign in BOUNDS if isinstance(m, kind)
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def build_sections() -> list[tuple[str, type[BaseModel]]]:
    """The build config's top-level keys (with the service section), then each registered
    stage's section in build order (pipeline/stages.py)."""
    return [("", BuildConfig)] + [(stage.name, stage.config) for stage in registry]


def main() -> None:
    print(render(build_sections()), end="")


if __name__ == "__main__":
    main()

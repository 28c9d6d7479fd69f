"""Two builds' report numbers side by side: every number of each section, the other's, the delta.

Nested stats are flattened to paths such as `funnel.dedup.docs_removed` or
`languages.de.after`: list items are named by their natural key (stage, language, entity, ...),
so a row means the same thing in both builds even when their lists differ in length or order.
"""

from __future__ import annotations

from typing import Any

from pipeline.stats.html import sections

# A report section's stats key -> the keys whose numbers it shows, where they differ.
MORE_KEYS = {"reasons": ("reasons", "counters")}
ITEM_KEYS = ("stage", "lang", "entity", "signal", "reason", "name", "kind")
SKIP = {"histogram", "curves", "edges", "config", "input_shards", "top_boilerplate_lines", "longest_tokens"}


def flatten(value: Any, path: str = "") -> dict[str, float]:
    """Every number under value, by dotted path; histograms and curves are left to the charts."""
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, (int, float)):
        return {path: value}
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in SKIP:
                found |= flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            name = next((str(item[k]) for k in ITEM_KEYS if isinstance(item, dict) and k in item), str(i))
            found |= flatten(item, f"{path}.{name}")
    return found


def deltas(this: dict[str, Any], other: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per section (by its title): [{"path", "this", "other", "delta"}] for every number in
    either build."""
    result = {}
    for title, section, _ in sections():
        keys = MORE_KEYS.get(section, (section,))
        mine = {p: v for k in keys for p, v in flatten(this.get(k), k).items()}
        theirs = {p: v for k in keys for p, v in flatten(other.get(k), k).items()}
        paths = list(mine) + [p for p in theirs if p not in mine]
        result[title] = [
            {
                "path": p,
                "this": mine.get(p),
                "other": theirs.get(p),
                "delta": mine[p] - theirs[p] if p in mine and p in theirs else None,
            }
            for p in paths
        ]
    return result

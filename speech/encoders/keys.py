"""State-dict renaming with two-way key tables of templates such as ``layers.{n}.fc1.``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

V = TypeVar("V")

KeyTable = Sequence[tuple[str, str]]
"""Pairs (foreign template, suite template); ``{n}`` is a layer number, ``{p}`` one of q/k/v.
A template ending in "." is a prefix (the rest of the key follows unchanged), otherwise a whole key."""

_FIELDS = {"n": r"\d+", "p": "[qkv]"}


def _regex(template: str) -> re.Pattern[str]:
    body = re.sub(r"\\\{(\w)\\\}", lambda m: f"(?P<{m.group(1)}>{_FIELDS[m.group(1)]})", re.escape(template))
    return re.compile("^" + body + ("(?P<rest>.+)$" if template.endswith(".") else "(?P<rest>)$"))


def rename(state: dict[str, V], table: KeyTable, reverse: bool = False, what: str = "key") -> dict[str, V]:
    """Rename every key of ``state`` by ``table`` (foreign -> suite, or suite -> foreign with ``reverse``).

    A key that no template matches raises ``KeyError`` naming it, so nothing is dropped silently.
    """
    pairs = [(_regex(b), a) if reverse else (_regex(a), b) for a, b in table]
    out: dict[str, V] = {}
    for key, value in state.items():
        for pattern, target in pairs:
            m = pattern.match(key)
            if m:
                groups = {k: v for k, v in m.groupdict().items() if k != "rest"}
                out[target.format(**groups) + m.group("rest")] = value
                break
        else:
            raise KeyError(f"{what} {key!r} has no counterpart in the key table")
    return out

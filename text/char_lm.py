"""Character n-gram language model with interpolated absolute discounting (Ney et al., 1994)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

EOS = "\n"


class CharNgramLM:
    """P(next char | previous ``order - 1`` chars), backing off to shorter histories, then uniform."""

    def __init__(self, order: int = 6, discount: float = 0.75):
        self.order, self.discount = order, discount
        self.counts: dict[str, dict[str, int]] = defaultdict(dict)  # history -> {char: count}
        self.alphabet: set[str] = set()
        self._cache: dict[tuple[str, str], float] = {}

    def fit(self, texts: Iterable[str]) -> CharNgramLM:
        for text in texts:
            seq = text + EOS
            self.alphabet.update(seq)
            for i, c in enumerate(seq):
                for n in range(self.order):
                    if i - n < 0:
                        break
                    h = seq[i - n : i]
                    row = self.counts[h]
                    row[c] = row.get(c, 0) + 1
        self._cache.clear()
        return self

    def prob(self, history: str, char: str) -> float:
        """Interpolated probability of ``char`` after ``history``."""
        h = history[-(self.order - 1) :] if self.order > 1 else ""
        key = (h, char)
        if key not in self._cache:
            self._cache[key] = self._prob(h, char)
        return self._cache[key]

    def _prob(self, h: str, char: str) -> float:
        lower = 1.0 / max(len(self.alphabet), 1) if not h else self._prob(h[1:], char)
        row = self.counts.get(h)
        if not row:
            return lower
        total = sum(row.values())
        return max(row.get(char, 0) - self.discount, 0.0) / total + self.discount * len(row) / total * lower

    def logprob(self, history: str, char: str) -> float:
        return math.log(max(self.prob(history, char), 1e-12))

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "discount": self.discount, "alphabet": sorted(self.alphabet),
                "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharNgramLM:
        lm = cls(int(data["order"]), float(data["discount"]))
        lm.alphabet = set(data["alphabet"])
        lm.counts = defaultdict(dict, {h: {c: int(n) for c, n in row.items()} for h, row in data["counts"].items()})
        return lm

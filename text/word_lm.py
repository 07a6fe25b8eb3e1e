"""Word n-gram LM with interpolated Kneser-Ney smoothing, written in the ARPA format KenLM reads.

    python scripts/build_word_lm.py input=corpus.txt output=lm.arpa [order=3]

KenLM's own estimator (``lmplz``) is a separate C++ build; this writes an equivalent model in plain
Python for the corpus sizes a low-resource language has, and ``kenlm.Model`` loads it directly.
Lower orders use continuation counts (Kneser & Ney, 1995; Chen & Goodman, 1998), with one absolute
discount per order.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from common.io import atomic_open

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
NEVER = -99.0  # ARPA's log10 probability for <s>, which is never predicted


class KneserNeyLM:
    """Interpolated Kneser-Ney n-gram probabilities over whitespace-separated words."""

    def __init__(self, order: int = 3, discount: float = 0.75):
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order, self.discount = order, discount
        # counts[n][history][word]: raw counts at the top order, continuation counts below.
        self.counts: list[dict[tuple[str, ...], dict[str, int]]] = [defaultdict(dict) for _ in range(order + 1)]
        self.vocab: set[str] = set()

    def fit(self, texts: Iterable[str]) -> KneserNeyLM:
        raw: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(self.order + 1)]
        for text in texts:
            words = text.split()
            if not words:
                continue
            self.vocab.update(words)
            seq = [BOS, *words, EOS]
            for i in range(1, len(seq)):
                for n in range(1, min(self.order, i + 1) + 1):
                    raw[n][tuple(seq[i - n + 1 : i + 1])] += 1
        if not self.vocab:
            raise ValueError("no words to fit a word LM on")
        self.vocab.add(EOS)
        for n in range(1, self.order + 1):
            if n == self.order:
                adjusted = dict(raw[n])
            else:
                # Below the top order a word sequence counts its distinct left neighbours (continuation
                # counts), except one that starts with <s>: nothing precedes it, so it keeps its raw count.
                adjusted = {g: c for g, c in raw[n].items() if g[0] == BOS}
                for longer in raw[n + 1]:
                    if longer[1] != BOS:
                        adjusted[longer[1:]] = adjusted.get(longer[1:], 0) + 1
            for gram, c in adjusted.items():
                self.counts[n][gram[:-1]][gram[-1]] = c
        return self

    def prob(self, history: tuple[str, ...], word: str) -> float:
        """P(word | the last ``order - 1`` words of history)."""
        return self._prob(tuple(history[-(self.order - 1) :]) if self.order > 1 else (), word)

    def _prob(self, h: tuple[str, ...], word: str) -> float:
        if not h:
            uni = self.counts[1][()]
            total = sum(uni.values())
            n_words = len(self.vocab) + 1  # + <unk>
            mass = self.discount * len(uni) / total
            return max(uni.get(word, 0) - self.discount, 0) / total + mass / n_words
        row = self.counts[len(h) + 1].get(h)
        lower = self._prob(h[1:], word)
        if not row:
            return lower
        total = sum(row.values())
        return max(row.get(word, 0) - self.discount, 0) / total + self.backoff(h) * lower

    def backoff(self, h: tuple[str, ...]) -> float:
        """The probability mass a history leaves to the next-lower order."""
        row = self.counts[len(h) + 1].get(h)
        if not row:
            return 1.0
        return self.discount * len(row) / sum(row.values())

    def write_arpa_for(self, texts: Iterable[str], path: str | os.PathLike[str]) -> Path:
        """Fit on ``texts`` and write the ARPA file (creating its folder)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.fit(texts).write_arpa(path)

    def write_arpa(self, path: str | os.PathLike[str]) -> Path:
        """Every seen n-gram with its interpolated log10 probability and, as a history, its backoff."""
        grams: list[list[tuple[tuple[str, ...], float, float | None]]] = [[] for _ in range(self.order + 1)]
        words = sorted(self.vocab | {UNK})
        for w in [BOS, *words]:
            p = NEVER if w == BOS else math.log10(self._prob((), w))
            grams[1].append(((w,), p, self._log_backoff((w,))))
        for n in range(2, self.order + 1):
            for h, row in sorted(self.counts[n].items()):
                for w in sorted(row):
                    gram = (*h, w)
                    bo = self._log_backoff(gram) if n < self.order else None
                    grams[n].append((gram, math.log10(self._prob(h, w)), bo))
        out = Path(path)
        with atomic_open(out, "w", encoding="utf-8") as f:
            f.write("\n\\data\\\n")
            for n in range(1, self.order + 1):
                f.write(f"ngram {n}={len(grams[n])}\n")
            for n in range(1, self.order + 1):
                f.write(f"\n\\{n}-grams:\n")
                for gram, p, bo in grams[n]:
                    f.write(f"{p:.6f}\t{' '.join(gram)}" + (f"\t{bo:.6f}\n" if bo is not None else "\n"))
            f.write("\n\\end\\\n")
        return out

    def _log_backoff(self, h: tuple[str, ...]) -> float | None:
        if len(h) >= self.order:
            return None
        return math.log10(self.backoff(h)) if self.counts[len(h) + 1].get(h) else 0.0


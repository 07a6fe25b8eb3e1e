"""Generated parallel text corpus: one sampled meaning realised in every language.

Writes under ``out_dir``: ``parallel/{split}.jsonl`` (id, meaning, texts per language),
``parallel/{split}.{lang}.txt`` (line i of every language is the same meaning),
``parallel/{split}.eng_Latn-{lang}.tsv`` (source<TAB>target, no header), ``mono/{lang}.txt``
(training-split sentences, the project's sentence lists and wordfreq phrases) and ``stats.json``.
No sentence of any language repeats across or within splits. Deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.grammar.meaning import Meaning
from datamodules.corpus.grammar.realise import REALISERS, realise
from datamodules.corpus.grammar.sampler import LENGTHS, MeaningSampler
from datamodules.corpus.languages import LANGUAGES
from datamodules.corpus.text_sources import lexicon_phrase, sentence_list

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


@dataclass
class TextCorpusConfig:
    """What to generate."""

    out_dir: str = "data/text"
    """Output folder."""
    langs: list[str] = field(default_factory=lambda: list(REALISERS))
    """Languages (iso639-3_Script); eng_Latn is always included as the pivot."""
    train: int = 20000
    """Training meanings."""
    dev: int = 500
    """Development meanings."""
    test: int = 1000
    """Held-out test meanings (never in train or dev)."""
    seed: int = 0
    """Seed of the meaning sampler."""
    lengths: dict[str, float] = field(default_factory=lambda: dict(LENGTHS))
    """Share of short (one entity), medium (a relation) and long (several clauses) meanings."""
    mono_sentences: bool = True
    """Add the project's hand-written sentence lists to mono/<lang>.txt."""
    mono_phrases: int = 2000
    """Wordfreq phrases per language added to mono/<lang>.txt (0 = none; skipped where wordfreq lacks the language)."""
    overwrite: bool = False
    """Rebuild even when the outputs exist."""


def _langs(cfg: TextCorpusConfig) -> list[str]:
    langs = list(dict.fromkeys(["eng_Latn", *cfg.langs]))
    unknown = [lang for lang in langs if lang not in REALISERS]
    if unknown:
        raise KeyError(f"no grammar for {unknown}; known: {', '.join(sorted(REALISERS))}")
    return langs


def _quotas(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Meanings per length, summing to ``total``."""
    norm = sum(shares.values())
    quotas = {k: int(total * v / norm) for k, v in shares.items()}
    for k in list(quotas)[: total - sum(quotas.values())]:
        quotas[k] += 1
    return quotas


def sample_splits(cfg: TextCorpusConfig) -> dict[str, list[tuple[Meaning, dict[str, str]]]]:
    """Meanings and their sentences per split; test first, so held-out sets never lose items to train."""
    langs = _langs(cfg)
    sampler = MeaningSampler(f"{cfg.seed}:text", cfg.lengths)
    seen_keys: set[str] = set()
    seen_text: dict[str, set[str]] = {lang: set() for lang in langs}
    out: dict[str, list[tuple[Meaning, dict[str, str]]]] = {}
    for split in ("test", "dev", "train"):
        rows: list[tuple[Meaning, dict[str, str]]] = []
        for length, quota in _quotas(int(getattr(cfg, split)), cfg.lengths).items():
            tries, got = 0, 0
            while got < quota:
                tries += 1
                if tries > 50 * quota + 1000:
                    raise RuntimeError(f"could only draw {got} distinct {length} {split} meanings of {quota}; "
                                       "lower the count or change corpus.lengths")
                m = sampler.sample(length)
                key = m.key()
                if key in seen_keys:
                    continue
                texts = {lang: realise(m, lang) for lang in langs}
                if any(texts[lang] in seen_text[lang] for lang in langs):
                    continue  # a sentence may not repeat, even when a language merges two meanings
                seen_keys.add(key)
                for lang in langs:
                    seen_text[lang].add(texts[lang])
                rows.append((m, texts))
                got += 1
        random.Random(f"{cfg.seed}:{split}").shuffle(rows)
        out[split] = rows
    return {s: out[s] for s in SPLITS}


def _write_lines(path: Path, lines: list[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def _mono(lang: str, train: list[str], cfg: TextCorpusConfig) -> list[str]:
    lines = list(train)
    if cfg.mono_sentences:
        lines += sentence_list(lang)
    if cfg.mono_phrases and lang in LANGUAGES:
        rng = random.Random(f"{cfg.seed}:mono:{lang}")
        phrases = (lexicon_phrase(lang, rng) for _ in range(cfg.mono_phrases))
        lines += [p for p in phrases if p]
    return list(dict.fromkeys(lines))


def _same_corpus(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two configs describe the same corpus (``overwrite`` is how to build, not what)."""
    return {k: v for k, v in a.items() if k != "overwrite"} == {k: v for k, v in b.items() if k != "overwrite"}


def existing_corpus(stats_path: Path, config: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The statistics of a corpus already built with the same config (None: build it); another config is an error."""
    if not stats_path.exists() or overwrite:
        return None
    old = json.loads(stats_path.read_text(encoding="utf-8"))
    if not _same_corpus(old.get("config") or {}, config):
        raise FileExistsError(f"{stats_path}: corpus exists with another config; pass overwrite=true to rebuild")
    log.info("%s exists with the same config; skipping (overwrite=true rebuilds)", stats_path)
    return dict(old)


@CORPUS_BUILDERS.register("text")
def build_text_corpus(cfg: TextCorpusConfig) -> dict[str, Any]:
    """Write the corpus (skipped when it exists with the same config) and return its statistics."""
    root = Path(cfg.out_dir)
    stats_path = root / "stats.json"
    existing = existing_corpus(stats_path, asdict(cfg), cfg.overwrite)
    if existing is not None:
        return existing
    langs = _langs(cfg)
    splits = sample_splits(cfg)
    stats: dict[str, Any] = {"config": asdict(cfg), "langs": langs, "splits": {}}
    for split, rows in splits.items():
        write_jsonl(root / "parallel" / f"{split}.jsonl", (
            {"id": f"{split}-{i:06d}", "meaning": m.to_json(), "texts": texts} for i, (m, texts) in enumerate(rows)))
        per_lang: dict[str, Any] = {}
        for lang in langs:
            lines = [texts[lang] for _, texts in rows]
            _write_lines(root / "parallel" / f"{split}.{lang}.txt", lines)
            if lang != "eng_Latn":
                _write_lines(root / "parallel" / f"{split}.eng_Latn-{lang}.tsv",
                             [f"{texts['eng_Latn']}\t{texts[lang]}" for _, texts in rows])
            per_lang[lang] = {"sentences": len(lines), "distinct": len(set(lines)),
                              "avg_chars": round(sum(map(len, lines)) / max(1, len(lines)), 1),
                              "avg_words": round(sum(len(s.split()) for s in lines) / max(1, len(lines)), 2)}
        lengths = {k: sum(m.length == k for m, _ in rows) for k in cfg.lengths}
        stats["splits"][split] = {"meanings": len(rows), "lengths": lengths, "langs": per_lang}
    stats["mono"] = {}
    for lang in langs:
        lines = _mono(lang, [texts[lang] for _, texts in splits["train"]], cfg)
        _write_lines(root / "mono" / f"{lang}.txt", lines)
        stats["mono"][lang] = len(lines)
    with atomic_open(stats_path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats

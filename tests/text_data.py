"""A tiny word-by-word parallel corpus in the text corpus's file format, for sentence-encoder tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

_WORDS = {
    "eng_Latn": "cat dog house river green small runs sleeps near under bread water sun night old",
    "deu_Latn": "Katze Hund Haus Fluss grün klein läuft schläft nahe unter Brot Wasser Sonne Nacht alt",
    "ukr_Cyrl": "кіт пес дім річка зелений малий біжить спить біля під хліб вода сонце ніч старий",
    "tur_Latn": "kedi köpek ev nehir yeşil küçük koşar uyur yakın altında ekmek su güneş gece yaşlı",
}
LEXICON = {lang: words.split() for lang, words in _WORDS.items()}


def write_tiny_corpus(out: Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """parallel/{split}.jsonl, parallel/{split}.eng_Latn-<lang>.tsv and mono/<lang>.txt under ``out``."""
    rng = random.Random(seed)
    sizes = sizes or {"train": 120, "dev": 24, "test": 24}
    seen: set[frozenset[int]] = set()  # no two meanings share a bag of words
    (out / "parallel").mkdir(parents=True, exist_ok=True)
    (out / "mono").mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        rows = []
        while len(rows) < n:
            words = tuple(rng.sample(range(15), rng.randint(3, 6)))
            if frozenset(words) in seen:
                continue
            seen.add(frozenset(words))
            texts = {lang: " ".join(lex[w] for w in words) for lang, lex in LEXICON.items()}
            rows.append({"id": f"{split}-{len(rows)}", "meaning": " ".join(map(str, words)), "texts": texts})
        (out / "parallel" / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        for lang in LEXICON:
            (out / "parallel" / f"{split}.{lang}.txt").write_text(
                "".join(r["texts"][lang] + "\n" for r in rows), encoding="utf-8"
            )
            if lang != "eng_Latn":
                tsv = "".join(f"{r['texts']['eng_Latn']}\t{r['texts'][lang]}\n" for r in rows)
                (out / "parallel" / f"{split}.eng_Latn-{lang}.tsv").write_text(tsv, encoding="utf-8")
    for lang, lex in LEXICON.items():
        lines = [" ".join(rng.choice(lex) for _ in range(rng.randint(3, 8))) for _ in range(200)]
        (out / "mono" / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out

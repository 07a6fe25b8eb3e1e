"""Where a sentence encoder's real-text errors are: tokenization per language and X->English failures by length.

    python benchmarks/text_ood_errors.py model=<sentence encoder dir> [data=<parallel jsonl>] [rows=1000]
        [short_words=5] [examples=3] [out=<json>]

For each language of ``langs`` on the first ``rows`` rows of ``data`` that have English: pieces per sentence,
characters per piece and the share of byte-fallback pieces (a character the tokenizer has no piece for), then the
X->English xsim error (ratio margin, as ``text.xsim``) on all rows, on short ones (English of at most
``short_words`` words) and on the rest, with a few failed retrievals (query, the right English, the one retrieved).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from common import runner
from common.io import atomic_open
from text.parallel import PIVOT, read_parallel
from text.sentence_encoder import from_pretrained
from text.xsim import margin_scores


def piece_stats(tokenizer: Any, texts: list[str], lang: str) -> dict[str, float]:
    """Pieces per sentence, characters per piece and the byte-fallback share (%) of ``texts``."""
    ids = [i for row in tokenizer.encode(texts, lang, 128) for i in row]
    n_bytes = sum(tokenizer.sp.id_to_piece(i).startswith("<0x") for i in ids)
    return {"pieces_per_sentence": len(ids) / max(len(texts), 1),
            "chars_per_piece": sum(len(t) for t in texts) / max(len(ids), 1),
            "byte_pieces_pct": 100.0 * n_bytes / max(len(ids), 1)}


def _error(wrong: list[bool], keep: list[bool]) -> float | None:
    """Error (%) over the kept rows; None when none is kept."""
    n = sum(keep)
    return 100.0 * sum(w for w, k in zip(wrong, keep) if k) / n if n else None


def analyse(model_dir: str, rows: list[dict[str, str]], langs: list[str], short_words: int, examples: int,
            batch_size: int = 256) -> dict[str, dict[str, Any]]:
    """Per language: piece statistics and the X->English error split by the English sentence's length."""
    model, tokenizer = from_pretrained(model_dir)

    def embed(texts: list[str], lang: str) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model(*tokenizer.batch(texts[s:s + batch_size], lang, 128))
                              for s in range(0, len(texts), batch_size)])  # [N, E]

    report: dict[str, dict[str, Any]] = {}
    for lang in langs:
        both = [r for r in rows if lang in r]
        if len(both) < 2:
            continue
        english, other = [r[PIVOT] for r in both], [r[lang] for r in both]
        found = margin_scores(embed(other, lang), embed(english, PIVOT)).argmax(1)  # [N]
        wrong = (found != torch.arange(len(both))).tolist()
        short = [len(e.split()) <= short_words for e in english]

        report[lang] = {
            **piece_stats(tokenizer, other, lang), "rows": len(both), "short_rows": sum(short),
            "to_eng_error": _error(wrong, [True] * len(both)), "to_eng_error_short": _error(wrong, short),
            "to_eng_error_long": _error(wrong, [not s for s in short]),
            "examples": [{"query": other[i], "gold": english[i], "retrieved": english[int(found[i])]}
                         for i in [i for i, w in enumerate(wrong) if w][:examples]],
        }
    return report


def run(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    all_rows = read_parallel(cfg.data)
    rows = [r for r in all_rows if PIVOT in r and any(lang in r for lang in cfg.langs)][: cfg.rows]
    if not rows:
        raise SystemExit(f"{cfg.data}: no row has {PIVOT} and one of {', '.join(cfg.langs)}")
    report = analyse(str(cfg.model), rows, list(cfg.langs), cfg.short_words, cfg.examples, cfg.batch_size)
    _, tokenizer = from_pretrained(cfg.model)
    report[PIVOT] = piece_stats(tokenizer, [r[PIVOT] for r in rows], PIVOT)
    print(f"{'lang':9} {'pieces':>6} {'ch/pc':>5} {'bytes%':>6} {'X->eng':>6} {'short':>6} {'long':>6}  (short: <= "
          f"{cfg.short_words} English words)")
    for lang, r in report.items():
        errs = [r.get(k) for k in ("to_eng_error", "to_eng_error_short", "to_eng_error_long")]
        cells = " ".join(f"{e:6.1f}" if e is not None else f"{'-':>6}" for e in errs)
        stats = f"{r['pieces_per_sentence']:6.1f} {r['chars_per_piece']:5.2f} {r['byte_pieces_pct']:6.2f}"
        print(f"{lang:9} {stats} {cells}")
    for lang, r in report.items():
        for ex in r.get("examples", []):
            print(f"  {lang}: {ex['query'][:60]!r} -> {ex['retrieved'][:50]!r} (right: {ex['gold'][:50]!r})")
    if cfg.out:
        with atomic_open(Path(cfg.out), "w") as f:
            json.dump({"model": str(cfg.model), "data": str(cfg.data), "rows": len(rows), "langs": report}, f,
                      indent=2, ensure_ascii=False)
    return report


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="text_ood_errors")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "text_ood_errors", "benchmarks"))


def main(argv: list[str]) -> dict[str, dict[str, Any]]:
    """``python benchmarks/text_ood_errors.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("text_ood_errors", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

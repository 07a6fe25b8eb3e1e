"""Character LMs for CTC beam search, tuned on a dev set and saved into a model directory.

    python scripts/build_lm.py model=runs/train/myrun/model train=data/speech/train.jsonl dev=data/speech/dev.jsonl

One n-gram LM per language from the training transcripts (never the test split), plus text-only
data: the ``lexicon_words`` most common words of the language (wordfreq, where it knows the language)
and any ``+text.<lang>=<file>`` of the user's. The fusion weights (alpha, beta) are picked on ``dev``
by CER. Writes ``<model>/char_lms.json``, which ``transcribe.py`` (decoder=auto) and
``Transcriber.from_pretrained`` then use.

Options (configs/inference/build_lm.yaml): order=6, lexicon_words=30000 (0: transcripts only),
+text.<lang>=<one sentence a line>. kenlm=true also writes word-level KenLM models from the same text
(``<model>/kenlm/<lang>.arpa``, kenlm_order=3, see text/word_lm.py) with their own tuned weights in
``kenlm.json``, for ``transcribe.py decoder=kenlm`` (needs ``pip install pyctcdecode kenlm``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from common import runner
from common.metrics import ErrorRates
from datamodules.corpus.languages import LANGUAGES
from datamodules.corpus.text_sources import lexicon, user_sentences
from datamodules.manifest import read_manifest
from speech.asr.beam import LanguageModels
from speech.asr.infer import Transcriber
from speech.asr.kenlm_decode import WordLMDecoders
from speech.asr.tuning import manifest_log_probs
from text.char_vocab import CharVocab
from text.normalize import normalize_transcript
from text.word_lm import KneserNeyLM


def lexicon_lines(lang: str, size: int, alphabet: str, per_line: int = 8) -> list[str]:
    """The language's common words in a fixed shuffled order, ``per_line`` to a line, kept to ``alphabet``.

    Word lists teach the LM spelling (which of two similar letters a word takes) beyond the
    transcripts; the shuffle keeps it from learning frequency-rank order as word order.
    """
    if lang not in LANGUAGES:
        return []
    allowed = set(alphabet) | {" "}
    words = [w for w in (normalize_transcript(x, lang) for x in lexicon(lang, size)) if w and set(w) <= allowed]
    np.random.default_rng(0).shuffle(words)
    return [" ".join(words[i : i + per_line]) for i in range(0, len(words), per_line)]


def run(cfg: DictConfig) -> None:
    """Fit, tune and save the character LMs (and with ``kenlm=true`` the word LMs) of ``cfg.model``."""
    texts: dict[str, list[str]] = defaultdict(list)
    for r in read_manifest(cfg.train, resolve_paths=False):
        if r.get("text") and r.get("lang"):
            texts[r["lang"]].append(normalize_transcript(r["text"], r["lang"]))
    t = Transcriber.from_pretrained(cfg.model, decoder="greedy")
    n_lex = cfg.lexicon_words
    for lang in list(texts):
        extra = lexicon_lines(lang, n_lex, t.vocab.lang_chars.get(lang, "")) if n_lex > 0 else []
        if lang in cfg.text:
            extra += [normalize_transcript(x, lang) for x in user_sentences(cfg.text[lang])]
        texts[lang] += extra
        print(f"{lang}: {len(texts[lang])} LM lines ({len(extra)} from text-only sources)")
    dev = manifest_log_probs(t, cfg.dev)
    plain = LanguageModels({}, 0.0, 0.0)
    print(f"dev CER, beam search without LM: {100 * dev_cer(plain, t.vocab, dev):.2f}%")

    lms = LanguageModels.fit(dict(texts), order=cfg.order)
    (alpha, beta), best = tune(lms, t.vocab, dev, [(a, b) for a in (0.3, 0.45, 0.6) for b in (1.0, 2.0)])
    path = lms.save(cfg.model)
    print(f"dev CER with {cfg.order}-gram character LMs: {100 * best:.2f}% (alpha={alpha}, beta={beta}) -> {path}")

    if cfg.kenlm:
        arpa = {}
        for lang, lines in texts.items():
            arpa[lang] = KneserNeyLM(cfg.kenlm_order).write_arpa_for(lines, Path(cfg.model) / "kenlm" / f"{lang}.arpa")
        words = WordLMDecoders(t.vocab, arpa)
        (alpha, beta), best = tune(words, t.vocab, dev, [(a, b) for a in (0.3, 0.5, 0.8) for b in (0.5, 1.0, 2.0)])
        path = words.save(cfg.model)
        print(f"dev CER with word {cfg.kenlm_order}-gram KenLM models: {100 * best:.2f}% (alpha={alpha}, beta={beta})"
              f" -> {path}")


def dev_cer(decoder: LanguageModels | WordLMDecoders, vocab: CharVocab,
            dev: list[tuple[str, str, np.ndarray]]) -> float:
    rates = ErrorRates()
    for lang, ref, lp in dev:
        rates.update([decoder.decode(lp, vocab, lang)], [ref], [lang])
    return float(rates.summary()["all"]["cer"])


def tune(decoder: LanguageModels | WordLMDecoders, vocab: CharVocab, dev: list[tuple[str, str, np.ndarray]],
         grid: list[tuple[float, float]]) -> tuple[tuple[float, float], float]:
    """Pick the fusion weights (alpha, beta) with the lowest dev CER and leave them set."""
    scores = {}
    for ab in grid:
        decoder.set_weights(*ab)
        scores[ab] = dev_cer(decoder, vocab, dev)
    best = min(scores, key=scores.__getitem__)
    decoder.set_weights(*best)
    return best, scores[best]


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="build_lm")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "build_lm"))


if __name__ == "__main__":
    main()

"""Character LMs for CTC beam search, tuned on a dev set and saved into a model directory.

    python scripts/build_lm.py model=runs/train/myrun/model train=data/speech/train.jsonl dev=data/speech/dev.jsonl

One n-gram LM per language from the training transcripts (never the test split), plus text-only
data: the ``lexicon_words`` most common words of the language (wordfreq, where it knows the language)
and any ``text.<lang>=<file>`` of the user's. The fusion weights (alpha, beta) are picked on ``dev``
by CER. Writes ``<model>/char_lms.json``, which ``transcribe.py`` (decoder=auto) and
``Transcriber.from_pretrained`` then use.

Options: order=6, lexicon_words=30000 (0: transcripts only), text.<lang>=<one sentence a line>.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from common.metrics import ErrorRates
from datamodules.corpus.languages import LANGUAGES
from datamodules.corpus.text_sources import lexicon, user_sentences
from datamodules.manifest import read_manifest
from speech.asr.beam import LanguageModels
from speech.asr.infer import Transcriber
from speech.audio import AudioError, load_audio
from text.normalize import normalize_transcript


def dev_logits(t: Transcriber, manifest: str) -> list[tuple[str, str, np.ndarray]]:
    rows = []
    for r in read_manifest(manifest):
        try:
            rows.append((r, load_audio(r["audio"])))
        except AudioError as e:
            print(f"skipping {e}", file=sys.stderr)
    out = []
    for i in range(0, len(rows), 16):
        batch = rows[i : i + 16]
        logp, out_lens = t.log_probs([w for _, w in batch])
        out += [(r["lang"], normalize_transcript(r["text"]), lp[:n].cpu().numpy())
                for (r, _), lp, n in zip(batch, logp, out_lens.tolist())]
    return out


def lexicon_lines(lang: str, size: int, alphabet: str, per_line: int = 8) -> list[str]:
    """The language's common words in a fixed shuffled order, ``per_line`` to a line, kept to ``alphabet``.

    Word lists teach the LM spelling (which of two similar letters a word takes) beyond the
    transcripts; the shuffle keeps it from learning frequency-rank order as word order.
    """
    if lang not in LANGUAGES:
        return []
    allowed = set(alphabet) | {" "}
    words = [w for w in (normalize_transcript(x) for x in lexicon(lang, size)) if w and set(w) <= allowed]
    np.random.default_rng(0).shuffle(words)
    return [" ".join(words[i : i + per_line]) for i in range(0, len(words), per_line)]


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    if not {"model", "train", "dev"} <= args.keys():
        raise SystemExit(__doc__)
    order = int(args.get("order", 6))
    texts: dict[str, list[str]] = defaultdict(list)
    for r in read_manifest(args["train"], resolve_paths=False):
        if r.get("text") and r.get("lang"):
            texts[r["lang"]].append(normalize_transcript(r["text"]))
    t = Transcriber.from_pretrained(args["model"], decoder="greedy")
    n_lex = int(args.get("lexicon_words", 30_000))
    for lang in list(texts):
        extra = lexicon_lines(lang, n_lex, t.vocab.lang_chars.get(lang, "")) if n_lex > 0 else []
        if f"text.{lang}" in args:
            extra += [normalize_transcript(x) for x in user_sentences(args[f"text.{lang}"])]
        texts[lang] += extra
        print(f"{lang}: {len(texts[lang])} LM lines ({len(extra)} from text-only sources)")
    lms = LanguageModels.fit(dict(texts), order=order)
    dev = dev_logits(t, args["dev"])

    def cer(alpha: float, beta: float, use_lm: bool = True) -> float:
        lms.alpha, lms.beta = alpha, beta
        rates = ErrorRates()
        for lang, ref, lp in dev:
            hyp = (lms if use_lm else LanguageModels({}, 0.0, 0.0)).decode(lp, t.vocab, lang)
            rates.update([hyp], [ref], [lang])
        return rates.summary()["all"]["cer"]

    print(f"dev CER, beam search without LM: {100 * cer(0.0, 0.0, use_lm=False):.2f}%")
    grid = [(a, b) for a in (0.3, 0.45, 0.6) for b in (1.0, 2.0, 3.0)]
    scores = {ab: cer(*ab) for ab in grid}
    (alpha, beta), best = min(scores.items(), key=lambda kv: kv[1])
    lms.alpha, lms.beta = alpha, beta
    path = lms.save(args["model"])
    print(f"dev CER with {order}-gram character LMs: {100 * best:.2f}% (alpha={alpha}, beta={beta}) -> {path}")


if __name__ == "__main__":
    main()

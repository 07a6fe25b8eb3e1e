"""Translation scores of SONAR-SLT: BLEU and chrF per target language (common.metrics, sacrebleu) and the cosine of
predicted to target sentence embeddings; decoding helpers shared by validation, ``evaluate`` and the translator."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from common.metrics import bleu, chrf
from text.tokenizer import SentencePieceTokenizer, lang_token
from vision.sign.decoder import TextDecoder

UNSPACED_SCRIPTS = ("Hans", "Hant", "Jpan", "Kore", "Thai")


def bleu_tokenize(lang: str) -> str:
    """sacrebleu's tokeniser for a language code: ``zh`` where words are not spaced, else ``13a``."""
    return "zh" if lang.rsplit("_", 1)[-1] in UNSPACED_SCRIPTS else "13a"


def lang_id(tokenizer: SentencePieceTokenizer, lang: str) -> int:
    """The decoder's start token for ``lang``; a language the tokenizer lacks is a clear error."""
    if lang not in tokenizer.langs:
        raise ValueError(f"the decoder was not trained to write {lang}; it writes {', '.join(tokenizer.langs)}")
    return int(tokenizer.sp.piece_to_id(lang_token(lang)))


def decode(decoder: TextDecoder, tokenizer: SentencePieceTokenizer, emb: Tensor, lang: str, beam: int = 1,
           length_penalty: float = 1.0, max_length: int | None = None) -> list[str]:
    """Sentences in ``lang`` for unit embeddings ``[B, E]``, at most ``max_length`` tokens (default: the
    decoder's)."""
    if emb.shape[0] == 0:
        return []
    start = torch.full((emb.shape[0],), lang_id(tokenizer, lang), dtype=torch.long, device=emb.device)
    ids = decoder.generate(emb, start, beam=beam, max_length=max_length, length_penalty=length_penalty)
    return [tokenizer.decode(s) for s in ids]


@dataclass
class Scores:
    """Hypotheses, references and embedding cosines, per target language."""

    hyps: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    refs: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    cos: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, lang: str, hyps: Sequence[str], refs: Sequence[str], pred: Tensor | None = None,
            target: Tensor | None = None) -> None:
        """One batch in one language; ``pred``/``target`` ``[B, E]`` add the embedding cosine."""
        self.hyps[lang] += list(hyps)
        self.refs[lang] += list(refs)
        if pred is not None and target is not None:
            self.cos[lang] += F.cosine_similarity(pred.float(), target.float(), dim=-1).tolist()

    def summary(self) -> dict[str, dict[str, float]]:
        """``{lang: {"n", "bleu", "chrf", "cos"}}`` with the mean over languages as ``mean`` (last)."""
        out: dict[str, dict[str, float]] = {}
        for lang in sorted(self.hyps):
            if not self.hyps[lang]:
                continue
            c = self.cos.get(lang) or []
            out[lang] = {"n": float(len(self.hyps[lang])),
                         "bleu": bleu(self.hyps[lang], self.refs[lang], tokenize=bleu_tokenize(lang)),
                         "chrf": chrf(self.hyps[lang], self.refs[lang]),
                         "cos": float(sum(c) / len(c)) if c else float("nan")}
        if out:
            keys = ("n", "bleu", "chrf", "cos")
            out["mean"] = {k: float(sum(m[k] for m in out.values()) / len(out)) for k in keys}
            out["mean"]["n"] = float(sum(m["n"] for k, m in out.items() if k != "mean"))
        return out


def format_table(summary: dict[str, dict[str, float]], title: str = "") -> str:
    """A fixed-width per-language table: n, BLEU, chrF, embedding cosine."""
    width = max([9, *(len(k) for k in summary)])
    lines = [title] if title else []
    lines.append(f"{'lang':<{width}} {'n':>6} {'BLEU':>6} {'chrF':>6} {'cos':>6}")
    for lang, m in summary.items():
        lines.append(f"{lang:<{width}} {int(m['n']):>6} {m['bleu']:>6.1f} {m['chrf']:>6.1f} {m['cos']:>6.3f}")
    return "\n".join(lines)

"""Greedy CTC decoding and batch transcription of files, arrays or bytes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from speech.asr.beam import LanguageModels
from speech.asr.hub import load_model
from speech.asr.model import CTCModel
from speech.audio import SAMPLE_RATE, decode_audio
from text.char_vocab import CharVocab


def restrict_to_langs(logp: Tensor, vocab: CharVocab, langs: Sequence[str | None] | None) -> Tensor:
    """Keep each utterance to its language's alphabet when the language is known."""
    if not langs or not any(vocab.allowed_ids(lang) for lang in langs):
        return logp
    keep = torch.ones(logp.shape[0], logp.shape[-1], dtype=torch.bool, device=logp.device)
    for i, lang in enumerate(langs):
        allowed = vocab.allowed_ids(lang)
        if allowed is not None:
            keep[i] = False
            keep[i, allowed] = True
    return logp.masked_fill(~keep[:, None, :], float("-inf"))


def greedy_decode(logp: Tensor, lens: Tensor, vocab: CharVocab, langs: Sequence[str | None] | None = None) -> list[str]:
    """Best path: argmax per frame, merge repeats, drop blanks; within ``langs``' alphabets when given."""
    best = restrict_to_langs(logp, vocab, langs).argmax(-1).cpu()  # [B, T]
    out = []
    for ids, n in zip(best, lens.cpu().tolist()):
        seq = ids[:n]
        keep = torch.ones_like(seq, dtype=torch.bool)
        keep[1:] = seq[1:] != seq[:-1]
        out.append(vocab.decode(seq[keep & (seq != vocab.blank_id)].tolist()))
    return [" ".join(t.split()) for t in out]


def pad_waves(waves: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad mono waveforms into [B, S] and their lengths."""
    lens = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lens.max()) if len(waves) else 0)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.as_tensor(w)
    return batch, lens


class Transcriber:
    """Batch transcription with a trained CTC model.

    ``Transcriber.from_pretrained(dir).transcribe(paths | arrays | bytes, batch_size=...)``.
    """

    def __init__(self, model: CTCModel, vocab: CharVocab, device: str | torch.device = "cpu",
                 lms: LanguageModels | None = None, decoder: str = "auto"):
        if decoder not in ("auto", "greedy", "beam"):
            raise ValueError(f"decoder must be auto, greedy or beam, got {decoder!r}")
        self.model, self.vocab, self.device = model.eval().to(device), vocab, torch.device(device)
        self.lms, self.decoder = lms, decoder

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu",
                        decoder: str = "auto") -> Transcriber:
        """A model directory (with its ``char_lms.json`` when present) or a ``.ckpt``."""
        model, vocab = load_model(path, device)
        lms = LanguageModels.load(path) if Path(path).is_dir() else None
        return cls(model, vocab, device, lms, decoder)

    def _use_beam(self, lang: str | None) -> bool:
        """``auto``: beam search with the language's LM when there is one, else greedy."""
        if self.decoder == "beam":
            return True
        return self.decoder == "auto" and self.lms is not None and (lang or "") in self.lms.lms

    @torch.inference_mode()
    def log_probs(self, waves: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
        """CTC log-probabilities [B, T, V] and frame counts [B] of one batch of 16 kHz waveforms."""
        wave, lens = pad_waves(waves)
        return self.model(wave.to(self.device), lens.to(self.device))

    @torch.inference_mode()
    def transcribe_waves(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None) -> list[str]:
        """Transcribe one batch of 16 kHz mono float32 waveforms (``langs``: optional hint per item)."""
        logp, out_lens = self.log_probs(waves)
        langs = list(langs) if langs is not None else [None] * len(waves)
        texts = greedy_decode(logp, out_lens, self.vocab, langs)
        lms = self.lms if self.lms is not None else LanguageModels({}, alpha=0.0, beta=0.0)
        for i, lang in enumerate(langs):
            if self._use_beam(lang):
                texts[i] = lms.decode(logp[i, : int(out_lens[i])].float().cpu().numpy(), self.vocab, lang)
        return texts

    def transcribe(
        self,
        inputs: Sequence[str | os.PathLike[str] | bytes | np.ndarray],
        batch_size: int = 16,
        lang: str | None = None,
    ) -> list[str]:
        """Transcribe paths, encoded bytes or 16 kHz arrays; batches are formed by length.

        ``lang`` keeps the output to that language's alphabet as seen in training.
        """
        waves = [
            np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else decode_audio(x, SAMPLE_RATE)
            for x in inputs
        ]
        order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
        texts = [""] * len(waves)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            for i, t in zip(idx, self.transcribe_waves([waves[i] for i in idx], [lang] * len(idx))):
                texts[i] = t
        return texts

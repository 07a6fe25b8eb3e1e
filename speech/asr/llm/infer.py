"""Batch transcription, in-context extension to new languages and language identification with LLM-ASR."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from datamodules.manifest import read_manifest
from speech.asr.infer import TRANSCRIBERS
from speech.asr.llm.decode import decode_prompts, max_tokens
from speech.asr.llm.hub import from_pretrained
from speech.asr.llm.model import LLMASR
from speech.asr.llm.tokens import EncodedAudio, build_sequence, pad_sequences
from speech.audio import SAMPLE_RATE, AudioError, decode_audio, load_audio
from speech.features import pad_waves
from text.normalize import normalize_transcript

MAX_CONTEXT = 10
"""Most in-context examples one utterance is conditioned on."""


def read_context(manifest: str | os.PathLike[str]) -> list[tuple[np.ndarray, str, str | None]]:
    """``(wave, normalised text, lang)`` of every row of a manifest of 1..``MAX_CONTEXT`` examples."""
    rows = read_manifest(manifest)
    if not 1 <= len(rows) <= MAX_CONTEXT:
        raise ValueError(f"{manifest}: a context manifest needs 1 to {MAX_CONTEXT} examples, got {len(rows)}")
    out = []
    for i, row in enumerate(rows, start=1):
        text = normalize_transcript(row.get("text", ""))
        if not text:
            raise ValueError(f"{manifest}: example {i} ({row['audio_raw']}) has no transcript")
        try:
            wave = load_audio(row["audio"])
        except AudioError as e:
            raise ValueError(f"{manifest}: example {i} ({row['audio_raw']}): {e.reason}") from None
        out.append((wave, text, row.get("lang")))
    return out


@TRANSCRIBERS.register("asr_llm")
class LLMTranscriber:
    """Transcribes with an ``LLMASR`` model, optionally conditioned on in-context examples.

    ``LLMTranscriber.from_pretrained(dir, context="tur_examples.jsonl").transcribe(paths, lang="tur_Latn")``
    writes a language the model never trained on from a few (audio, text) examples, with no weight update.
    """

    def __init__(self, model: LLMASR, device: str | torch.device = "cpu",
                 context: Sequence[tuple[np.ndarray, str, str | None]] = (), beam: int = 4, alpha: float = 1.0,
                 max_bytes_per_second: float = 40.0):
        self.model, self.device = model.eval().to(device), torch.device(device)
        self.context = list(context)
        self.beam, self.alpha, self.max_bytes_per_second = beam, alpha, max_bytes_per_second

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu",
                        context: str | os.PathLike[str] | None = None, beam: int = 4, alpha: float = 1.0,
                        max_bytes_per_second: float = 40.0) -> LLMTranscriber:
        """A model directory; ``context`` is a manifest of in-context examples (audio, text, lang)."""
        examples = read_context(context) if context else []
        return cls(from_pretrained(Path(path), device), device, examples, beam, alpha, max_bytes_per_second)

    @torch.inference_mode()
    def _audio(self, waves: Sequence[np.ndarray]) -> EncodedAudio:
        """Audio embeddings [B + C, A, D] of the batch, then of the context examples."""
        wave, lens = pad_waves([*waves, *(w for w, _, _ in self.context)])
        return self.model.encode_audio(wave.to(self.device), lens.to(self.device))

    @torch.inference_mode()
    def transcribe_waves(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None) -> list[str]:
        """Transcribe one batch of 16 kHz mono float32 waveforms; an unknown or missing language gets no token."""
        if not len(waves):
            return []
        langs = list(langs) if langs is not None else [None] * len(waves)
        tok, b_n = self.model.tok, len(waves)
        enc = self._audio(waves)
        ctx = [enc.segment(b_n + i, tok.lang_id(lang), tok.encode(text))
               for i, (_, text, lang) in enumerate(self.context)]
        prompts = [build_sequence(tok, ctx, enc.segment(b, tok.lang_id(langs[b])), "bos") for b in range(b_n)]
        max_len = max_tokens([len(w) / SAMPLE_RATE for w in waves], self.max_bytes_per_second)
        texts, _ = decode_prompts(self.model, prompts, enc.audio, max_len, self.beam, self.alpha)
        return texts

    def transcribe(
        self,
        inputs: Sequence[str | os.PathLike[str] | bytes | np.ndarray],
        batch_size: int = 16,
        lang: str | None = None,
    ) -> list[str]:
        """Transcribe paths, encoded bytes or 16 kHz arrays; batches are formed by length."""
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

    @torch.inference_mode()
    def lang_probs(self, waves: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Per waveform, the probability of each known language token right after ``<lid>`` (sums to <= 1)."""
        if not len(waves):
            return []
        tok = self.model.tok
        wave, lens = pad_waves(list(waves))
        enc = self.model.encode_audio(wave.to(self.device), lens.to(self.device))
        batch = pad_sequences([build_sequence(tok, [], enc.segment(b), "lid") for b in range(len(waves))],
                              tok.pad_id, left=True)
        x = self.model.embed(batch["ids"].to(self.device), batch["clip"].to(self.device),
                             batch["frame"].to(self.device), enc.audio)
        logits, _ = self.model(x, batch["pos"].to(self.device), batch["mask"].to(self.device))
        probs = logits[:, -1].softmax(-1)[:, tok.first_lang:].cpu()  # [B, n_langs]
        return [{lang: float(p[i]) for i, lang in enumerate(tok.langs)} for p in probs]

    def identify(self, waves: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Most likely known language of each waveform and its probability."""
        return [max(p.items(), key=lambda kv: kv[1]) if p else ("und", 0.0) for p in self.lang_probs(waves)]

"""CTC decoding and transcription of files, arrays or bytes of any length, with optional timestamps."""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.io import read_json_object
from common.registry import Registry
from speech.asr.align import align_text, check_timestamps
from speech.asr.beam import LanguageModels
from speech.asr.ctc import greedy_decode
from speech.asr.foreign import suite_model_dir
from speech.asr.hub import load_model
from speech.asr.kenlm_decode import WordLMDecoders, require_pyctcdecode
from speech.asr.lid import LIDHead, SegmentConfig, capture_hidden, has_lid, identify_frames, load_lid, runs_of
from speech.asr.longform import WindowConfig, probe_duration, split_points, stitched_log_probs, stream_audio
from speech.asr.model import CTCModel
from speech.asr.precision import with_precision
from speech.audio import SAMPLE_RATE, decode_audio
from speech.features import frame_samples_of, pad_waves
from text.char_vocab import CharVocab
from text.langcodes import resolve_or_none

log = logging.getLogger(__name__)

AudioInput = str | os.PathLike[str] | bytes | np.ndarray
"""What ``transcribe`` accepts: a path, encoded bytes, or a 16 kHz mono array."""

DECODE_PIECE_SECONDS = 10.0
"""Longest stretch decoded (and aligned) in one piece; beam search slows down with the prefix length."""

TRANSCRIBERS: Registry[Any] = Registry("transcriber")
"""config.json model_type -> transcriber class, for the model types that ``Transcriber`` (CTC) does not read."""


class Transcriber:
    """Batch transcription with a trained CTC model; inputs longer than a window go window by window.

    ``Transcriber.from_pretrained(dir).transcribe(paths | arrays | bytes, lang=..., timestamps="word")``.
    """

    def __init__(self, model: CTCModel, vocab: CharVocab, device: str | torch.device = "cpu",
                 lms: LanguageModels | WordLMDecoders | None = None, decoder: str = "auto",
                 window: WindowConfig | None = None, lid: LIDHead | None = None,
                 lid_segments: SegmentConfig | None = None, lid_min_confidence: float = 0.5,
                 precision: str = "fp32"):
        if decoder not in ("auto", "greedy", "beam", "kenlm"):
            raise ValueError(f"decoder must be auto, greedy, beam or kenlm, got {decoder!r}")
        # fp32 is exact; bf16 autocast and int8 linears (speech.asr.precision) trade agreement for speed.
        self.model, self._precision = with_precision(model.eval().to(device), precision, device)
        self.vocab, self.device, self.precision = vocab, torch.device(device), precision
        self.lms, self.decoder = lms, decoder
        self.window = window or WindowConfig()
        self.lid = lid.eval().to(device) if lid is not None else None
        self.lid_segments = lid_segments or SegmentConfig()
        self.lid_min_confidence = lid_min_confidence

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu",
                        decoder: str = "auto", context: str | None = None, chunk_seconds: float = 30.0,
                        overlap_seconds: float = 4.0, window_batch: int = 2, min_pause_seconds: float = 0.25,
                        lid: bool | None = None, lid_min_confidence: float = 0.5,
                        precision: str = "fp32", cache_dir: str | os.PathLike[str] | None = None) -> Transcriber:
        """A model directory (with its ``char_lms.json`` when present), a ``.ckpt``, or a transformers
        ``Wav2Vec2ForCTC`` or fairseq2 CTC directory (converted once, cached in ``cache_dir``: speech.asr.foreign).

        ``decoder``: auto (character-LM beam search where the language has an LM, else greedy),
        greedy, beam, or kenlm (word-level KenLM models from ``kenlm.json``, see scripts/build_lm.py).

        Inputs longer than ``chunk_seconds`` run in windows cut at pauses of ``min_pause_seconds`` or
        more (see ``speech.asr.longform.windows``); ``context`` belongs to LLM-ASR models and is refused.

        ``lid``: load the directory's language-ID head (``lid.safetensors``, see scripts/build_lid.py) when
        there is one (None), insist on it (True) or ignore it (False). A detected language below
        ``lid_min_confidence`` is reported but does not steer decoding.

        ``precision``: fp32 (exact, the default), bf16 (autocast) or int8 (dynamically quantised linears, CPU).
        """
        if context is not None:
            raise ValueError(f"context={context}: in-context examples need an LLM-ASR model (model_type asr_llm); "
                             f"{path} is a CTC model")
        path = suite_model_dir(path, cache_dir)
        model, vocab = load_model(path, device)
        lms: LanguageModels | WordLMDecoders | None
        if decoder == "kenlm":
            require_pyctcdecode()
            lms = WordLMDecoders.load(path, vocab) if Path(path).is_dir() else None
            if lms is None:
                raise FileNotFoundError(f"{path}: decoder=kenlm needs {WordLMDecoders.FILE} in a model directory "
                                        "(python scripts/build_lm.py model=... train=... dev=... kenlm=true)")
        else:
            lms = LanguageModels.load(path) if Path(path).is_dir() else None
        window = WindowConfig(chunk_seconds, overlap_seconds, window_batch, min_pause_seconds)
        head = load_lid(path, device) if lid or (lid is None and Path(path).is_dir() and has_lid(path)) else None
        return cls(model, vocab, device, lms, decoder, window, head, lid_min_confidence=lid_min_confidence,
                   precision=precision)

    @property
    def languages(self) -> list[str]:
        """The languages the model knows: alphabets from training, LMs, LID head and language adapters."""
        langs = set(self.vocab.lang_chars) | set(self.lms.lms if self.lms is not None else ())
        langs |= set(self.lid.cfg.langs if self.lid is not None else ())
        adapters = getattr(self.model, "adapters", None)  # AdaptedCTCModel: one adapter per added language
        return sorted(langs | set(adapters.keys() if isinstance(adapters, torch.nn.ModuleDict) else ()))

    def resolve_lang(self, lang: str | None) -> str | None:
        """The model's code for a language as written (de, deu, de-DE ...); ``LanguageError`` if it has none."""
        return resolve_or_none(lang, self.languages)

    @functools.cached_property
    def frame_samples(self) -> int:
        """Input samples per output frame, measured from the frame counts of two lengths."""
        return frame_samples_of(lambda waves: self.log_probs(waves)[1])

    @property
    def frame_seconds(self) -> float:
        return self.frame_samples / SAMPLE_RATE

    def _use_beam(self, lang: str | None) -> bool:
        """``auto`` and ``kenlm``: beam search with the language's LM when there is one, else greedy."""
        if self.decoder == "beam":
            return True
        return self.decoder in ("auto", "kenlm") and self.lms is not None and (lang or "") in self.lms.lms

    @torch.inference_mode()
    def log_probs(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None
                  ) -> tuple[Tensor, Tensor]:
        """CTC log-probabilities [B, T, V] and frame counts [B] of one batch of 16 kHz waveforms."""
        wave, lens = pad_waves(waves)
        with self._precision():
            return self.model(wave.to(self.device), lens.to(self.device), langs)

    def decode(self, logp: Tensor, lang: str | None = None) -> str:
        """Text of one utterance's log-probs [T, V]: beam search or greedy, per ``decoder``."""
        if self._use_beam(lang):
            lms = self.lms if self.lms is not None else LanguageModels({}, alpha=0.0, beta=0.0)
            return lms.decode(logp.float().cpu().numpy(), self.vocab, lang)
        return greedy_decode(logp[None], torch.tensor([logp.shape[0]]), self.vocab, [lang])[0]

    def transcript(self, logp: Tensor, lang: str | None, timestamps: str = "none",
                   duration: float | None = None, offset: float = 0.0) -> dict[str, Any]:
        """Row of one input's log-probs [T, V]: text, plus ``words`` (and ``chars``) with times in seconds.

        Long inputs are decoded and aligned in pieces cut between words, so both stay cheap. ``offset``:
        seconds of the input before ``logp[0]``.
        """
        max_frames = max(1, int(DECODE_PIECE_SECONDS / self.frame_seconds))
        bounds = [0, *split_points(logp, self.vocab, max_frames), logp.shape[0]]
        # A cut with no space beside it lies inside a word: its pieces join without one (exact greedy text).
        best = logp.argmax(-1).tolist()  # [T]
        gaps = [True, *(_word_gap(best, cut, self.vocab) for cut in bounds[1:-1])]
        texts: list[str] = []
        words: list[dict[str, Any]] = []
        chars: list[dict[str, Any]] = []
        for (lo, hi), gap in zip(itertools.pairwise(bounds), gaps):
            text = self.decode(logp[lo:hi], lang)
            if timestamps != "none" and text:
                w, c = align_text(logp[lo:hi], text, self.vocab, self.frame_seconds,
                                  offset + lo * self.frame_seconds, duration)
                if not gap and words and w and texts and texts[-1] and not text.startswith(" "):
                    words[-1] = {**words[-1], "word": words[-1]["word"] + w[0]["word"], "end": w[0]["end"]}
                    w = w[1:]
                words += w
                chars += c
            if gap or not texts:
                texts.append(text)
            else:
                texts[-1] += text
        return _row(texts, words, chars, timestamps)

    def transcript_runs(self, logp: Tensor, runs: Sequence[dict[str, Any]], timestamps: str = "none",
                        duration: float | None = None) -> dict[str, Any]:
        """Row of a code-switched input's log-probs [T, V]: each language run decoded in its own language."""
        texts, words, chars = [], [], []
        for run in runs:
            lo = round(run["start"] / self.frame_seconds)
            hi = logp.shape[0] if run is runs[-1] else round(run["end"] / self.frame_seconds)
            if hi > lo:
                lang = run["lang"] if run["confidence"] >= self.lid_min_confidence else None
                part = self.transcript(logp[lo:hi], lang, timestamps, duration, lo * self.frame_seconds)
                texts.append(part["text"])
                words += part.get("words", [])
                chars += part.get("chars", [])
        return _row(texts, words, chars, timestamps)

    def _wants_lid(self, lang: str | None, lid: bool | None) -> bool:
        """Language ID runs on an input without a hint (``lid`` None) or on every input (True), given a head."""
        if lid and self.lid is None:
            raise ValueError("lid=true needs a model directory with a language-ID head "
                             "(python scripts/build_lid.py model=<dir> train=<manifest> dev=<manifest>)")
        return self.lid is not None and (bool(lid) or (lid is None and lang is None))

    @torch.inference_mode()
    def log_probs_and_frames(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None
                             ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``log_probs`` plus the encoder frames [B, T, D] the LID head reads (None without a head)."""
        if self.lid is None:
            logp, lens = self.log_probs(waves, langs)
            return logp, lens, None
        with capture_hidden(self.model) as seen:
            logp, lens = self.log_probs(waves, langs)
        return logp, lens, seen[-1].float()

    def identify_frames(self, hidden: Tensor, valid: Tensor | None, duration: float,
                        wave: np.ndarray | None = None) -> dict[str, Any]:
        """LID row of one input's encoder frames [T, D] (see ``speech.asr.lid.identify_frames``); with its
        ``wave`` and ``lid_segments.reencode``, segments come from windows of audio encoded on their own."""
        assert self.lid is not None
        row = identify_frames(self.lid, hidden, valid, self.frame_seconds, self.lid_segments, duration)
        if "segments" in row and wave is not None and self.lid_segments.reencode:
            row["segments"] = self.audio_segments(wave)
        return row

    def audio_segments(self, wave: np.ndarray, batch: int = 16) -> list[dict[str, Any]]:
        """Language runs of a 16 kHz waveform from the LID head on sliding windows of audio, each encoded alone."""
        assert self.lid is not None
        cfg = self.lid_segments
        win, hop = int(cfg.window_seconds * SAMPLE_RATE), max(1, int(cfg.hop_seconds * SAMPLE_RATE))
        starts = list(range(0, max(len(wave) - win, 0) + 1, hop))
        if starts[-1] + win < len(wave):
            starts.append(len(wave) - win)
        scores = []
        for b in range(0, len(starts), batch):
            _, lens, hidden = self.log_probs_and_frames([wave[s : s + win] for s in starts[b : b + batch]])
            assert hidden is not None
            with torch.no_grad():
                scores.append(self.lid(hidden, lens).float().log_softmax(-1).cpu())
        centres = [(s + min(win, len(wave)) / 2) / SAMPLE_RATE for s in starts]
        return runs_of(torch.cat(scores), centres, len(wave) / SAMPLE_RATE, self.lid.cfg.langs, cfg.switch_penalty)

    def _steer(self, hint: str | None, info: dict[str, Any] | None) -> str | None:
        """The language decoding uses: the hint, else a detection at least ``lid_min_confidence`` sure."""
        if hint is not None or info is None:
            return hint
        return info["lang"] if info["confidence"] >= self.lid_min_confidence else None

    def _decode_row(self, logp: Tensor, hint: str | None, info: dict[str, Any] | None, timestamps: str,
                    duration: float) -> dict[str, Any]:
        """Row of one input decoded in its hinted or detected language(s), with the LID fields when LID ran."""
        runs = (info or {}).get("segments") or []
        if hint is None and len(runs) > 1:
            row = self.transcript_runs(logp, runs, timestamps, duration)
        else:
            row = self.transcript(logp, self._steer(hint, info), timestamps, duration)
        if info is not None:
            row |= {"lang": hint or info["lang"], "lang_confidence": info["confidence"]}
            if hint is not None:
                row["lang_detected"] = info["lang"]
            if "segments" in info:
                row["segments"] = info["segments"]
        return row

    def transcribe_batch(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None,
                         timestamps: str = "none", lid: bool | None = None) -> list[dict[str, Any]]:
        """Rows of one batch of (window-length or shorter) 16 kHz waveforms, run through the model at once.

        With a LID head, inputs without a language (or all, ``lid=True``) get ``lang``, ``lang_confidence``
        (and ``segments`` when long enough), and the detected language steers their decoding.
        """
        langs = list(langs) if langs is not None else [None] * len(waves)
        logp, out_lens, hidden = self.log_probs_and_frames(waves, langs)
        infos = [self.identify_frames(hidden[i, : int(n)], None, len(w) / SAMPLE_RATE, w)
                 if hidden is not None and self._wants_lid(lang, lid) else None
                 for i, (w, n, lang) in enumerate(zip(waves, out_lens.tolist(), langs))]
        steered = [self._steer(lang, info) for lang, info in zip(langs, infos)]
        if not isinstance(self.model, CTCModel) and steered != langs:
            logp, out_lens = self.log_probs(waves, steered)  # language-routed models (adapters) need it in the pass
        return [{**self._decode_row(logp[i, : int(n)], lang, info, timestamps, len(w) / SAMPLE_RATE),
                 "duration": round(len(w) / SAMPLE_RATE, 3)}
                for i, (w, n, lang, info) in enumerate(zip(waves, out_lens.tolist(), langs, infos))]

    def _long_pass(self, src: str | os.PathLike[str] | np.ndarray, lang: str | None, name: str | None,
                   with_frames: bool) -> tuple[Tensor, int, Tensor | None, Tensor | None]:
        """Stitched log-probs [T, V] of a long input, its samples, and (``with_frames``) its frames [T, D]
        with a mask [T] of the frames some window kept (the rest lie in pauses)."""
        blocks = stream_audio(src, name)
        if not with_frames or self.lid is None:
            logp, samples = stitched_log_probs(blocks, lambda ws: self.log_probs(ws, [lang] * len(ws)),
                                               self.frame_samples, self.window, self.vocab.blank_id)
            return logp, samples, None, None

        def both(ws: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
            lp, lens, hidden = self.log_probs_and_frames(ws, [lang] * len(ws))
            assert hidden is not None
            return torch.cat([lp, hidden.to(lp.dtype)], -1), lens  # stitched together; pause frames get -inf

        joint, samples = stitched_log_probs(blocks, both, self.frame_samples, self.window, self.vocab.blank_id)
        d = self.lid.cfg.d_model
        hidden = joint[:, -d:]
        valid = hidden.isfinite().all(-1)
        return joint[:, :-d], samples, hidden.masked_fill(~valid[:, None], 0.0), valid

    def transcribe_long(self, src: str | os.PathLike[str] | np.ndarray, lang: str | None = None,
                        timestamps: str = "none", name: str | None = None, lid: bool | None = None
                        ) -> dict[str, Any]:
        """Row of one input of any length, read and run window by window (memory does not grow with it)."""
        want = self._wants_lid(lang, lid)
        logp, samples, hidden, valid = self._long_pass(src, lang, name, want)
        duration = samples / SAMPLE_RATE
        info = self.identify_frames(hidden, valid, duration) if hidden is not None else None
        return {**self._decode_row(logp, lang, info, timestamps, duration), "duration": round(duration, 3)}

    def is_long(self, src: AudioInput) -> bool:
        """Whether ``src`` needs the windowed path: longer than one window, or of unknown length."""
        if isinstance(src, bytes):
            return False
        if isinstance(src, np.ndarray):
            return len(src) > self.window.chunk_seconds * SAMPLE_RATE
        seconds = probe_duration(src)
        return seconds is None or seconds > self.window.chunk_seconds

    def transcribe_waves(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None) -> list[str]:
        """Transcribe one batch of 16 kHz mono float32 waveforms (``langs``: optional hint per item)."""
        return [r["text"] for r in self.transcribe_batch(waves, langs)]

    def _split(self, inputs: Sequence[AudioInput]) -> tuple[dict[int, Any], dict[int, np.ndarray]]:
        """Long inputs (path or array, streamed later) and short ones (decoded now) by position."""
        long: dict[int, Any] = {}
        short: dict[int, np.ndarray] = {}
        for i, x in enumerate(inputs):
            if not isinstance(x, bytes) and self.is_long(x):
                long[i] = np.asarray(x, np.float32) if isinstance(x, np.ndarray) else x
            else:
                short[i] = np.asarray(x, np.float32) if isinstance(x, np.ndarray) else decode_audio(x, SAMPLE_RATE)
        return long, short

    def identify(self, inputs: Sequence[AudioInput], batch_size: int = 16) -> list[dict[str, Any]]:
        """Language of each path, encoded bytes or 16 kHz array: ``{lang, confidence, scores}``, plus
        ``segments`` (``[{start, end, lang, confidence}]``) on inputs of ``lid_segments.min_seconds`` or more."""
        if self.lid is None:
            raise ValueError("identify needs a model directory with a language-ID head "
                             "(python scripts/build_lid.py model=<dir> train=<manifest> dev=<manifest>)")
        long, short = self._split(inputs)
        rows: list[dict[str, Any]] = [{} for _ in inputs]
        for i, src in long.items():
            _, samples, hidden, valid = self._long_pass(src, None, None, True)
            assert hidden is not None
            rows[i] = self.identify_frames(hidden, valid, samples / SAMPLE_RATE)
        order = sorted(short, key=lambda i: len(short[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            _, lens, hidden = self.log_probs_and_frames([short[i] for i in idx])
            assert hidden is not None
            for j, i in enumerate(idx):
                rows[i] = self.identify_frames(hidden[j, : int(lens[j])], None, len(short[i]) / SAMPLE_RATE,
                                               short[i])
        return rows

    def transcribe(self, inputs: Sequence[AudioInput], batch_size: int = 16, lang: str | None = None,
                   timestamps: str = "none", lid: bool | None = None) -> list[str] | list[dict[str, Any]]:
        """Transcribe paths, encoded bytes or 16 kHz arrays; short ones in batches formed by length.

        ``lang`` keeps the output to that language's alphabet as seen in training; without it, a model with
        a LID head decodes each input in its detected language. With ``timestamps`` "word" or "char", or
        ``lid=True``, the result is one dict per input (text, words, chars, lang, lang_confidence, segments).
        ``lang`` may be written as users write codes (de, deu, de-DE); see ``text.langcodes``.
        """
        check_timestamps(timestamps)
        lang = self.resolve_lang(lang)
        long, short = self._split(inputs)
        rows: list[dict[str, Any]] = [{} for _ in inputs]
        for i, src in long.items():
            rows[i] = self.transcribe_long(src, lang, timestamps, lid=lid)
        order = sorted(short, key=lambda i: len(short[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            batch = self.transcribe_batch([short[i] for i in idx], [lang] * len(idx), timestamps, lid)
            for i, row in zip(idx, batch):
                rows[i] = row
        if timestamps == "none" and not lid:
            return [r["text"] for r in rows]
        return rows


def _word_gap(best: list[int], cut: int, vocab: CharVocab) -> bool:
    """Whether the run of blank/space frames (greedy path) around frame ``cut`` holds a space."""
    space = vocab.index.get(" ")
    silent = (vocab.blank_id, space)
    lo, hi = cut, cut
    while lo > 0 and best[lo - 1] in silent:
        lo -= 1
    while hi < len(best) and best[hi] in silent:
        hi += 1
    return space in best[lo:hi]


def _row(texts: list[str], words: list[dict[str, Any]], chars: list[dict[str, Any]], timestamps: str
         ) -> dict[str, Any]:
    row: dict[str, Any] = {"text": " ".join(" ".join(texts).split())}
    if timestamps != "none":
        row["words"] = words
    if timestamps == "char":
        row["chars"] = chars
    return row


def model_type(path: str | os.PathLike[str]) -> str | None:
    """config.json ``model_type`` of a model directory (None for a checkpoint file)."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return None
    kind = read_json_object(cfg).get("model_type")
    return kind if isinstance(kind, str) else None


def load_transcriber(path: str | os.PathLike[str], device: str | torch.device = "cpu", **options: Any) -> Any:
    """The transcriber for a model directory: ``Transcriber`` for CTC types, the LLM-ASR one for ``asr_llm``.

    Options the chosen class does not take (a CTC decoder for an LLM model, say) are dropped with a warning.
    A foreign checkpoint directory is converted first (``cache_dir``: see ``speech.asr.foreign``).
    """
    path = suite_model_dir(path, options.pop("cache_dir", None))
    kind = model_type(path)
    if kind is None or kind not in TRANSCRIBERS:
        return Transcriber.from_pretrained(path, device, **options)
    cls = TRANSCRIBERS.get(kind)
    name = cls.__name__
    params = inspect.signature(cls.from_pretrained).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        dropped = sorted(k for k in options if k not in params)
        if dropped:
            log.warning("%s: %s ignores the option(s) %s", path, name, ", ".join(dropped))
        options = {k: v for k, v in options.items() if k in params}
    return cls.from_pretrained(path, device, **options)

"""Every Voicebox task through one flow model: zero-shot and cross-lingual TTS, editing, continuation, denoising,
diverse sampling (Le et al., 2023).

Public API::

    synth = Synthesizer.from_pretrained(bundle_dir)        # see speech.tts.bundle for what a bundle is
    out = synth.tts("Guten Morgen.", "deu_Latn", "prompt.wav", "Der Text des Prompts.")    # -> Synthesis
    out = synth.edit("utt.wav", "ich mag rote Äpfel", "ich mag grüne Äpfel", "deu_Latn")
    out = synth.continue_("utt.wav", "Der Anfang", "und wie es weitergeht", "deu_Latn")
    out = synth.denoise("noisy.wav", "der ganze Text", "deu_Latn", span=(0.5, 1.5))
    outs = synth.sample("Guten Morgen.", "deu_Latn", "prompt.wav", "Der Text des Prompts.", n=4, seed=0)

A ``Synthesis`` holds the 16 kHz float32 waveform, its log-mel frames [T, n_mels] (before the vocoder) and which
of them were generated. Frames the task keeps are copied bit for bit from the input's mel. Bad input (empty text,
a language or characters the model cannot say, an unreadable, silent, too short or too long prompt) is one
``ValueError`` naming the reason, raised before anything is generated.

Durations: the duration model of the bundle predicts the new units' frames from the known ones; without one, new
units take the prompt's speaking rate (its frames per unit). The prompt's own units are spread over its frames by
the duration model's estimate scaled to the prompt's length, or uniformly without one: the context frames are
copied anyway, so their units only steer how the model reads the prompt. Edits and denoising take the
utterance's real durations when given (``durations=``, e.g. a row of scripts/tts_align.py) and estimate them the
same way otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from speech.audio import SAMPLE_RATE, SILENCE_PEAK, AudioError, decode_audio
from speech.tts import tasks
from speech.tts.bundle import Bundle, load_vocoder, read_bundle
from speech.tts.duration_hub import DurationPredictor
from speech.tts.duration_hub import from_pretrained as load_duration
from speech.tts.flow import solve
from speech.tts.hub import from_pretrained as load_acoustic
from speech.tts.model import FlowTTS, expand_units
from speech.tts.units import char_units
from speech.tts.vocab import UnitVocab
from speech.vocoder.mel import LogMelSpectrogram, MelSpec

Audio = str | os.PathLike[str] | np.ndarray | Tensor
"""A file path, or a 16 kHz mono waveform."""

MIN_PROMPT_SECONDS = 1.0
"""Shortest audio a task takes as context: less holds too little of the voice."""


@dataclass
class Synthesis:
    """One rendition: the waveform, its mel frames before the vocoder and what was generated."""

    wav: np.ndarray
    """Float32 waveform at ``sample_rate``."""
    mel: Tensor
    """Natural-log mel frames [T, n_mels] that the vocoder turned into ``wav``."""
    generated: tuple[int, int]
    """Frames of ``mel`` from the first to the last generated one, end exclusive."""
    seed: int
    """The seed of the starting noise: the same seed gives the same rendition."""
    sample_rate: int = SAMPLE_RATE
    """Samples per second of ``wav``."""

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate


@dataclass
class Options:
    """How the ODE is solved (speech.tts.flow.solve)."""

    nfe: int = 16
    """Evaluations of the vector field."""
    method: str = "midpoint"
    """``euler`` or ``midpoint``."""
    guidance: float = 0.7
    """Classifier-free guidance strength (Voicebox uses 0.7)."""
    sway: float = -1.0
    """Sway-sampling coefficient of the time grid (F5-TTS: -1 puts more steps at the start)."""


class Synthesizer:
    """A flow acoustic model, an optional duration model and a vocoder, behind one method per task."""

    def __init__(self, model: FlowTTS, vocab: UnitVocab, vocoder: nn.Module,
                 durations: DurationPredictor | None = None, langs: Sequence[str] = ()):
        self.model, self.vocab, self.vocoder, self.durations = model.eval(), vocab, vocoder.eval(), durations
        self.langs = list(langs)
        self.spec = MelSpec()
        self.device = next(model.parameters()).device
        self.mel = LogMelSpectrogram(self.spec).to(self.device)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike[str], duration: str | os.PathLike[str] | None = None,
                        vocoder: str | os.PathLike[str] | None = None, device: str = "cpu") -> Synthesizer:
        """Load a bundle (``speech.tts.bundle``); ``duration`` / ``vocoder`` override its parts."""
        b = read_bundle(model_dir)
        b = Bundle(b.acoustic, str(duration) if duration is not None else b.duration,
                   str(vocoder) if vocoder is not None else b.vocoder)
        model, vocab = load_acoustic(b.acoustic, device)
        from common.hub import read_config

        langs = read_config(b.acoustic).get("langs") or []
        dur = load_duration(b.duration, device) if b.duration not in (None, "", "none") else None
        return cls(model, vocab, load_vocoder(str(b.vocoder), device), dur, [str(x) for x in langs])

    # Inputs: each check raises one ValueError saying what is wrong.

    def units(self, text: str, lang: str, what: str = "text") -> list[str]:
        """The units of ``text``; ``ValueError`` for empty text or a language or characters the model cannot say."""
        if not isinstance(lang, str) or not lang:
            raise ValueError(f"{what}: a language is required (e.g. deu_Latn)")
        if self.langs and lang not in self.langs:
            raise ValueError(f"{what}: the model cannot say language {lang!r} (it knows {', '.join(self.langs)})")
        try:
            units = char_units(text or "", lang)
            self.vocab.encode(units, strict=True)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None
        return units

    def read_audio(self, audio: Audio, what: str = "prompt") -> tuple[Tensor, str]:
        """A waveform [S] at 16 kHz and how to name it; ``ValueError`` naming the file when it is unreadable,
        silent or under 1 s."""
        if isinstance(audio, (np.ndarray, Tensor)):
            wav = torch.as_tensor(audio, dtype=torch.float32)
            label = f"{what} waveform"
            if wav.dim() != 1:
                raise ValueError(f"{label}: expected mono samples [S], got shape {tuple(wav.shape)}")
            if not torch.isfinite(wav).all():
                raise ValueError(f"{label}: contains NaN or infinite samples")
            if len(wav) < MIN_PROMPT_SECONDS * SAMPLE_RATE:
                raise ValueError(f"{label}: too short ({len(wav) / SAMPLE_RATE:.3f} s < {MIN_PROMPT_SECONDS} s)")
            if float(wav.abs().max()) < SILENCE_PEAK:
                raise ValueError(f"{label}: silent (peak amplitude below {SILENCE_PEAK})")
            return wav, label
        try:
            return torch.from_numpy(decode_audio(audio, min_seconds=MIN_PROMPT_SECONDS)), f"{what} {audio}"
        except AudioError as e:
            raise ValueError(f"{what} {e}") from None

    @torch.no_grad()
    def log_mel(self, wav: Tensor, what: str = "prompt") -> Tensor:
        """Log-mel frames [T, n_mels] of a waveform; ``ValueError`` when it is longer than the model takes."""
        frames = self.spec.frames(len(wav))
        if frames > self.model.cfg.max_frames:
            raise ValueError(f"{what}: {len(wav) / SAMPLE_RATE:.1f} s is longer than the model takes "
                             f"({self.model.cfg.max_frames} frames = {self.max_seconds:.1f} s)")
        return self.mel(wav.to(self.device)[None])[0]

    @property
    def max_seconds(self) -> float:
        return (self.model.cfg.max_frames - 1) / self.spec.frame_rate

    # Durations

    def estimate_durations(self, units: list[str], lang: str, frames: int, what: str = "prompt") -> list[int]:
        """Frames per unit of an utterance of ``frames`` frames without an alignment: the duration model's guess
        scaled to the length, or uniform."""
        if frames < len(units) - 2:
            raise ValueError(f"{what}: {len(units) - 2} characters of text but only {frames} frames of audio "
                             f"({frames / self.spec.frame_rate:.2f} s); is it the right transcript?")
        if self.durations is None:
            return tasks.uniform_durations(len(units), frames)
        return self.durations.predict([units], [lang], total=[frames])[0]

    def new_durations(self, units: list[str], known: list[int | None], lang: str) -> list[int]:
        """Durations of the units whose ``known`` entry is None, given the others (their speaking rate)."""
        todo = [i for i, k in enumerate(known) if k is None]
        if self.durations is not None:
            pred = self.durations.predict([units], [lang], known=[known])[0]
            return [pred[i] for i in todo]
        given = [k for k in known if k is not None]
        return tasks.rate_durations(sum(given), len(given), len(todo))

    @staticmethod
    def check_durations(durations: Sequence[int], units: list[str], frames: int, what: str) -> list[int]:
        durs = [int(d) for d in durations]
        if len(durs) != len(units) or sum(durs) != frames or min(durs) < 0:
            raise ValueError(f"{what}: durations must give each of the {len(units)} units non-negative frames "
                             f"summing to the audio's {frames} frames (got {len(durs)} summing to {sum(durs)})")
        return durs

    # Generation

    def render(self, plan: tasks.Plan, source: Tensor | None, seeds: Sequence[int],
               options: Options) -> list[Synthesis]:
        """Run one plan: kept frames copied from ``source`` [T0, n_mels], the rest generated, once per seed."""
        if plan.frames > self.model.cfg.max_frames:
            raise ValueError(f"the output would be {plan.frames / self.spec.frame_rate:.1f} s, longer than the "
                             f"model takes ({self.max_seconds:.1f} s with the prompt); use a shorter prompt or text")
        m, n_mels, dev = self.model, self.spec.n_mels, self.device
        src = torch.tensor(plan.source_index(), dtype=torch.long, device=dev)  # [T]
        keep = src >= 0
        ctx = source[src.clamp_min(0)] if source is not None else torch.zeros(plan.frames, n_mels, device=dev)
        ctx = ctx * keep[:, None]
        ids = torch.tensor(self.vocab.encode(plan.units, strict=True), device=dev)[None]
        units = expand_units(ids, torch.tensor(plan.durations, device=dev)[None], plan.frames)  # [1, T]
        b = len(seeds)
        # One noise draw per seed, so a rendition does not depend on the others in the batch.
        x0 = torch.stack([torch.randn(plan.frames, n_mels, generator=torch.Generator().manual_seed(int(s)))
                          for s in seeds]).to(dev)
        with torch.no_grad():
            x = solve(m, m.normalize(ctx)[None].expand(b, -1, -1), keep[None].expand(b, -1), units.expand(b, -1),
                      nfe=options.nfe, method=options.method, guidance=options.guidance, sway=options.sway, x0=x0)
            # Kept frames are the input's exactly, not their normalise/denormalise round trip.
            mel = torch.where(keep[None, :, None], ctx[None], m.denormalize(x))  # [B, T, n_mels]
            lo, hi = plan.output
            mel = mel[:, lo:hi]
            with torch.random.fork_rng(devices=[]):  # Griffin-Lim's random phase, reproducible per seed
                torch.manual_seed(int(seeds[0]))
                wav = self.vocoder(mel)  # [B, S]
        g0, g1 = plan.generated()
        gen = (max(g0 - lo, 0), max(min(g1, hi) - lo, 0))
        return [Synthesis(w.float().cpu().numpy(), x.cpu(), gen, int(s)) for w, x, s in zip(wav, mel, seeds)]

    @staticmethod
    def seeds(seed: int | None, n: int = 1) -> list[int]:
        base = int(torch.randint(0, 2**31 - 1 - n, ()).item()) if seed is None else int(seed)
        return [base + i for i in range(n)]

    # Tasks

    def _prompted(self, text: str, lang: str, prompt: Audio, prompt_text: str, prompt_lang: str | None,
                  prompt_durations: Sequence[int] | None, whole: bool) -> tuple[tasks.Plan, Tensor]:
        new = self.units(text, lang)
        plang = prompt_lang or lang
        punits = self.units(prompt_text, plang, "prompt_text")
        wav, label = self.read_audio(prompt)
        mel = self.log_mel(wav, label)
        pdurs = (self.estimate_durations(punits, plang, len(mel), label) if prompt_durations is None
                 else self.check_durations(prompt_durations, punits, len(mel), "prompt_durations"))
        ndurs = self.new_durations([*punits, *new], [*pdurs, *[None] * len(new)], lang)
        plan = tasks.tts_plan(punits, pdurs, new, ndurs)
        if whole:
            plan = tasks.Plan(plan.units, plan.durations, plan.segments, (0, plan.frames))
        return plan, mel

    def tts(self, text: str, lang: str, prompt: Audio, prompt_text: str, prompt_lang: str | None = None,
            nfe: int = 16, method: str = "midpoint", guidance: float = 0.7, sway: float = -1.0,
            seed: int | None = None, prompt_durations: Sequence[int] | None = None) -> Synthesis:
        """``text`` in the voice of ``prompt`` (whose transcript is ``prompt_text``); only the new speech comes back.

        A ``prompt_lang`` other than ``lang`` is cross-lingual synthesis.
        """
        plan, mel = self._prompted(text, lang, prompt, prompt_text, prompt_lang, prompt_durations, whole=False)
        return self.render(plan, mel, self.seeds(seed), Options(nfe, method, guidance, sway))[0]

    def sample(self, text: str, lang: str, prompt: Audio, prompt_text: str, prompt_lang: str | None = None,
               n: int = 4, nfe: int = 16, method: str = "midpoint", guidance: float = 0.7, sway: float = -1.0,
               seed: int | None = None, prompt_durations: Sequence[int] | None = None) -> list[Synthesis]:
        """``n`` renditions of ``text`` from seeds ``seed``, ``seed + 1``, ... (diverse sampling)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        plan, mel = self._prompted(text, lang, prompt, prompt_text, prompt_lang, prompt_durations, whole=False)
        return self.render(plan, mel, self.seeds(seed, n), Options(nfe, method, guidance, sway))

    def continue_(self, wav: Audio, text: str, continuation_text: str, lang: str, nfe: int = 16,
                  method: str = "midpoint", guidance: float = 0.7, sway: float = -1.0, seed: int | None = None,
                  durations: Sequence[int] | None = None) -> Synthesis:
        """The utterance ``wav`` (transcript ``text``) going on to say ``continuation_text``; all of it comes back,
        the original frames unchanged."""
        plan, mel = self._prompted(continuation_text, lang, wav, text, lang, durations, whole=True)
        return self.render(plan, mel, self.seeds(seed), Options(nfe, method, guidance, sway))[0]

    def _utterance(self, wav: Audio, text: str, lang: str, durations: Sequence[int] | None,
                   what: str) -> tuple[list[str], list[int], Tensor]:
        units = self.units(text, lang)
        samples, label = self.read_audio(wav, what)
        mel = self.log_mel(samples, label)
        durs = (self.estimate_durations(units, lang, len(mel), label) if durations is None
                else self.check_durations(durations, units, len(mel), "durations"))
        return units, durs, mel

    def edit(self, wav: Audio, text: str, new_text: str, lang: str, nfe: int = 16, method: str = "midpoint",
             guidance: float = 0.7, sway: float = -1.0, seed: int | None = None,
             durations: Sequence[int] | None = None) -> Synthesis:
        """Content editing: the utterance ``wav`` (transcript ``text``) saying ``new_text`` instead; the words that
        differ are regenerated, the frames of the rest kept."""
        old, odurs, mel = self._utterance(wav, text, lang, durations, "audio")
        new = self.units(new_text, lang, "new_text")
        span = tasks.edit_span(old, new)
        known: list[int | None] = [*odurs[: span.start], *[None] * (span.new_end - span.start),
                                   *odurs[span.old_end :]]
        region = self.new_durations(new, known, lang)
        plan = tasks.edit_plan(old, odurs, new, span, region)
        return self.render(plan, mel, self.seeds(seed), Options(nfe, method, guidance, sway))[0]

    def denoise(self, wav: Audio, text: str, lang: str, span: Sequence[float] | None = None, nfe: int = 16,
                method: str = "midpoint", guidance: float = 0.7, sway: float = -1.0, seed: int | None = None,
                durations: Sequence[int] | None = None) -> Synthesis:
        """Regenerate the (noisy) ``span`` = (start, end) seconds of ``wav`` from the rest of it and its transcript,
        as Voicebox denoises; ``span=None`` regenerates all of it (clean speech, but the voice is not kept)."""
        units, durs, mel = self._utterance(wav, text, lang, durations, "audio")
        frames = (0, len(mel)) if span is None else tasks.span_frames(span, len(mel), self.spec.frame_rate)
        plan = tasks.infill_plan(units, durs, frames)
        return self.render(plan, mel, self.seeds(seed), Options(nfe, method, guidance, sway))[0]

    def run(self, task: str, **kw: Any) -> list[Synthesis]:
        """One task by name (tts, edit, continue, denoise, sample), as the command line calls it."""
        fns: dict[str, Callable[..., Synthesis | list[Synthesis]]] = {
            "tts": self.tts, "edit": self.edit, "continue": self.continue_, "denoise": self.denoise,
            "sample": self.sample}
        if task not in fns:
            raise ValueError(f"task must be one of {', '.join(fns)}, got {task!r}")
        out = fns[task](**kw)
        return out if isinstance(out, list) else [out]

"""A TTS bundle: which acoustic model, duration model and vocoder synthesize together.

A bundle directory is either

* an acoustic model directory (``model_type`` tts_flow, from ``experiment=tts_lowres``), optionally holding a
  ``duration/`` (tts_duration) and a ``vocoder/`` model directory, or
* a folder with a ``bundle.json`` naming the three parts, written by ``save_bundle``::

      {"type": "tts_bundle", "acoustic": "../tts_lowres/model", "duration": "../tts_duration/model",
       "vocoder": "griffin_lim"}

  Paths are relative to the bundle's folder (absolute ones stay absolute); ``duration`` may be null (durations
  then follow the prompt's speaking rate) and ``vocoder`` is a vocoder directory or ``griffin_lim``.

Public API::

    save_bundle(acoustic_dir, duration_dir | None, vocoder_dir | "griffin_lim", out_dir, copy=False) -> Path
    bundle = read_bundle(dir)        # Bundle(acoustic, duration, vocoder) as paths to load
    vocoder = load_vocoder(name_or_dir, device)   # log-mel [B, T, n_mels] -> waveform [B, (T - 1) * hop]
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from common import hub
from common.io import atomic_open, read_json_object

BUNDLE_FILE = "bundle.json"
TYPE = "tts_bundle"
GRIFFIN_LIM = "griffin_lim"
"""The vocoder name that needs no model directory."""


@dataclass(frozen=True)
class Bundle:
    """Where the three parts of a synthesizer are."""

    acoustic: str
    """The tts_flow model directory."""
    duration: str | None
    """The tts_duration model directory, or None (speaking-rate durations)."""
    vocoder: str
    """A vocoder model directory or ``griffin_lim``."""


def _check(path: str | os.PathLike[str], expect: str, role: str) -> None:
    try:
        hub.read_config(path, expect=expect)
    except ValueError as e:
        raise ValueError(f"{role}: {e}") from None


def read_bundle(model_dir: str | os.PathLike[str]) -> Bundle:
    """The parts of a bundle directory (see the module docstring); ``ValueError`` naming what is wrong."""
    d = Path(model_dir)
    if not d.is_dir():
        raise ValueError(f"{d}: no such TTS bundle or model directory")
    if (d / BUNDLE_FILE).is_file():
        data = read_json_object(d / BUNDLE_FILE)
        if data.get("type") != TYPE or not isinstance(data.get("acoustic"), str):
            raise ValueError(f"{d / BUNDLE_FILE}: not a TTS bundle (expected type {TYPE!r} and an 'acoustic' path)")

        def resolve(p: object) -> str | None:
            if p in (None, ""):
                return None
            if not isinstance(p, str):
                raise ValueError(f"{d / BUNDLE_FILE}: paths must be strings, got {p!r}")
            return p if p == GRIFFIN_LIM else str(d / Path(p).expanduser())

        acoustic = resolve(data["acoustic"])
        assert acoustic is not None
        return Bundle(acoustic, resolve(data.get("duration")), resolve(data.get("vocoder")) or GRIFFIN_LIM)
    _check(d, "tts_flow", "acoustic model")
    duration = str(d / "duration") if (d / "duration" / "config.json").is_file() else None
    vocoder = str(d / "vocoder") if (d / "vocoder" / "config.json").is_file() else GRIFFIN_LIM
    return Bundle(str(d), duration, vocoder)


def save_bundle(acoustic_dir: str | os.PathLike[str], duration_dir: str | os.PathLike[str] | None,
                vocoder: str | os.PathLike[str], out_dir: str | os.PathLike[str], copy: bool = False) -> Path:
    """Write ``out_dir/bundle.json`` naming the parts (checked to be the right model types), atomically.

    ``copy`` copies the model directories into ``out_dir`` (acoustic/, duration/, vocoder/) so the bundle stands
    alone; otherwise it refers to them by paths relative to ``out_dir``.
    """
    out = Path(out_dir)
    _check(acoustic_dir, "tts_flow", "acoustic model")
    if duration_dir is not None:
        _check(duration_dir, "tts_duration", "duration model")
    if str(vocoder) != GRIFFIN_LIM:
        _check(vocoder, "vocoder_vocos", "vocoder")
    out.mkdir(parents=True, exist_ok=True)

    def place(src: str | os.PathLike[str], name: str) -> str:
        if copy:
            shutil.copytree(src, out / name, dirs_exist_ok=True)
            return name
        return os.path.relpath(Path(src).resolve(), out.resolve())

    body = {"type": TYPE, "acoustic": place(acoustic_dir, "acoustic"),
            "duration": None if duration_dir is None else place(duration_dir, "duration"),
            "vocoder": GRIFFIN_LIM if str(vocoder) == GRIFFIN_LIM else place(vocoder, "vocoder")}
    with atomic_open(out / BUNDLE_FILE, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=2)
    return out


def load_vocoder(name_or_dir: str, device: str = "cpu") -> nn.Module:
    """The vocoder of a bundle: ``griffin_lim`` or a model directory (speech.vocoder.hub.make_vocoder)."""
    from speech.vocoder.hub import make_vocoder

    if name_or_dir != GRIFFIN_LIM and not Path(name_or_dir).is_dir():
        raise ValueError(f"vocoder: {name_or_dir} is neither {GRIFFIN_LIM!r} nor a vocoder model directory")
    return make_vocoder(name_or_dir, device)

"""Decoding settings of a trained CTC model picked on a dev manifest: the log-mel hop it reads at."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from common.metrics import ErrorRates
from datamodules.manifest import read_manifest
from speech.asr.infer import Transcriber
from speech.asr.model import CTCModel
from speech.audio import AudioError, load_audio
from text.normalize import normalize_transcript

log = logging.getLogger(__name__)


def manifest_audio(manifest: str) -> list[tuple[dict[str, Any], np.ndarray]]:
    """The transcribed rows of a manifest with their waveforms; a row without a transcript or with an unreadable
    file is skipped with a warning naming it. A row without ``lang`` is decoded without one and counted as "und"."""
    rows = []
    for r in read_manifest(manifest):
        if not str(r.get("text") or "").strip():
            log.warning("skipping %s: no transcript in %s", r.get("audio_raw", r["audio"]), manifest)
            continue
        try:
            rows.append((r, load_audio(r["audio"])))
        except AudioError as e:
            log.warning("skipping %s", e)
    return rows


def manifest_log_probs(t: Transcriber, manifest: str | Sequence[tuple[dict[str, Any], np.ndarray]],
                       batch: int = 16) -> list[tuple[str, str, np.ndarray]]:
    """(language, normalised reference, log-probs [T, V]) of every readable row of a manifest (a path, or its
    ``manifest_audio``)."""
    rows = manifest_audio(manifest) if isinstance(manifest, str) else list(manifest)
    out = []
    for i in range(0, len(rows), batch):
        part = rows[i : i + batch]
        logp, lens = t.log_probs([w for _, w in part])
        out += [(r.get("lang") or "und", normalize_transcript(r["text"], r.get("lang")), lp[:n].float().cpu().numpy())
                for (r, _), lp, n in zip(part, logp, lens.tolist())]
    return out


def hop_error_rates(t: Transcriber, rows: Sequence[tuple[dict[str, Any], np.ndarray]], hops_ms: Sequence[float]
                    ) -> dict[float, dict[str, dict[str, float]]]:
    """Per-language CER/WER of ``rows`` decoded (``t``'s decoder, language given) at each log-mel hop; the model
    is left at its own hop."""
    model = t.model
    if not isinstance(model, CTCModel) or model.cfg.encoder_type != "conformer":
        raise ValueError("the decode hop is a setting of log-mel (conformer) CTC models")
    own = model.cfg.decode_hop_ms
    out = {}
    try:
        for ms in hops_ms:
            model.set_decode_hop(float(ms))
            rates = ErrorRates()
            for lang, ref, lp in manifest_log_probs(t, rows):
                rates.update([t.decode(torch.from_numpy(lp), lang)], [ref], [lang])
            out[float(ms)] = rates.summary()
    finally:
        model.set_decode_hop(own)
    return out

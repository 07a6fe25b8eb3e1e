"""Shaping every clip the same way, so length, level and silence never tell which generator made it.

Each clip is trimmed of silence, cut at a quiet point to a duration drawn independently of its source, given a
leading and trailing pause drawn the same way for every source, and normalised to one active-speech level.
``shortcut_report`` then checks on the finished corpus that such cues are near chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE

TARGET_DBFS = -24.0
"""Active-speech RMS level of every clip."""
PEAK = 0.95
"""Peak ceiling after normalisation (quieter clips are turned down, never clipped)."""
CUT_SEARCH = 0.3
"""Seconds before the drawn length in which a clip is cut at its quietest frame."""
_FRAME = 320  # 20 ms


def _frame_db(wave: np.ndarray) -> np.ndarray:
    n = len(wave) // _FRAME
    frames = wave[: n * _FRAME].reshape(n, _FRAME)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def trim(wave: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Drop leading and trailing frames quieter than ``floor_db`` below the loudest frame."""
    db = _frame_db(wave)
    if not len(db):
        return wave
    loud = np.flatnonzero(db > db.max() + floor_db)
    return wave[loud[0] * _FRAME : (loud[-1] + 1) * _FRAME]


def cut(wave: np.ndarray, seconds: float, search: float = CUT_SEARCH) -> np.ndarray:
    """At most ``seconds`` long: cut at the quietest frame of the last ``search`` seconds, with a 10 ms fade-out."""
    limit = int(seconds * SAMPLE_RATE)
    if len(wave) <= limit:
        return wave
    lo = max(0, limit - int(search * SAMPLE_RATE))
    db = _frame_db(wave[lo:limit])
    end = lo + (int(np.argmin(db)) + 1) * _FRAME if len(db) else limit
    out = wave[:end].copy()
    fade = min(len(out), SAMPLE_RATE // 100)
    out[len(out) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def pad(wave: np.ndarray, lead: float, tail: float) -> np.ndarray:
    """Digital silence before and after (the same kind of pause for every source)."""
    return np.pad(wave, (int(lead * SAMPLE_RATE), int(tail * SAMPLE_RATE))).astype(np.float32)


def active_rms_db(wave: np.ndarray) -> float:
    """RMS level (dBFS) of the frames within 40 dB of the loudest: the level of the speech, not the pauses."""
    db = _frame_db(wave)
    if not len(db):
        return -120.0
    active = db[db > db.max() - 40.0]
    return float(10 * np.log10(np.mean(10 ** (active / 10))))


def normalise(wave: np.ndarray) -> np.ndarray:
    """Active speech at ``TARGET_DBFS``, peaks at most ``PEAK``."""
    if not np.any(wave):
        return wave.astype(np.float32)
    gain = 10 ** ((TARGET_DBFS - active_rms_db(wave)) / 20)
    out = wave * gain
    peak = float(np.abs(out).max())
    if peak > PEAK:
        out = out * (PEAK / peak)
    return out.astype(np.float32)


def leading_silence(wave: np.ndarray) -> float:
    """Seconds before the first frame within 40 dB of the loudest."""
    db = _frame_db(wave)
    return float(np.argmax(db > db.max() - 40.0) * _FRAME / SAMPLE_RATE) if len(db) else 0.0


def _one_feature_accuracy(train: Sequence[float], y_train: Sequence[str], test: Sequence[float],
                          y_test: Sequence[str], bins: int = 10) -> float:
    """Accuracy of the best classifier on one scalar: the majority label of each quantile bin of the train values."""
    if not train or not test:
        return float("nan")
    edges = np.quantile(np.asarray(train), np.linspace(0, 1, bins + 1)[1:-1])
    vote: dict[int, dict[str, int]] = {}
    for v, y in zip(np.searchsorted(edges, train), y_train, strict=True):
        vote.setdefault(int(v), {}).setdefault(y, 0)
        vote[int(v)][y] += 1
    prior = max(set(y_train), key=list(y_train).count)
    pred = [max(vote[int(b)], key=vote[int(b)].__getitem__) if int(b) in vote else prior
            for b in np.searchsorted(edges, test)]
    return float(np.mean([p == y for p, y in zip(pred, y_test, strict=True)]))


def shortcut_report(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-source duration, level and leading silence, and how well each alone predicts the source.

    Rows carry ``duration``, ``level_db``, ``lead_s`` and ``source``. ``chance`` is the majority-class accuracy on
    test; a cue is a shortcut when its accuracy is far above it.
    """
    y_tr, y_te = [r["source"] for r in train], [r["source"] for r in test]
    out: dict[str, Any] = {"per_source": {}, "accuracy_from_one_cue": {}}
    for s in sorted(set(y_tr) | set(y_te)):
        rows = [r for r in [*train, *test] if r["source"] == s]
        out["per_source"][s] = {k: [round(float(np.mean([r[k] for r in rows])), 3),
                                    round(float(np.std([r[k] for r in rows])), 3)]
                                for k in ("duration", "level_db", "lead_s")}
    for k in ("duration", "level_db", "lead_s"):
        acc = _one_feature_accuracy([r[k] for r in train], y_tr, [r[k] for r in test], y_te)
        out["accuracy_from_one_cue"][k] = round(acc, 3)
    out["chance"] = round(max(y_te.count(s) for s in set(y_te)) / len(y_te), 3) if y_te else float("nan")
    out["classes"] = len(set(y_tr))
    return out

"""Spectrograms of held-out sentences in unseen voices, so a reader can look: the voice prompt, the generated speech
and the speaker's real recording of the sentence, side by side in one PNG.

    python benchmarks/tts_figures.py model=runs/tts/bundle requests=runs/tts/requests.jsonl \
        generated=runs/tts/generated [n=3] [out=docs/figures/tts_spectrograms.png]

``n`` requests (speech.tts.infer.write_prompt_requests), one per language while there are languages left, or the
ones named in ``ids``; the generated wav comes from ``generated`` (a scripts/synthesize.py output folder) where it
is there and is synthesized with the bundle otherwise. Every panel is the log-mel (speech.vocoder.mel) the acoustic
model predicts, on one colour scale.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` imports benchmarks.*

from benchmarks.tts_quality import Request, in_turn, load_requests, save_png, synthesizer_loader
from common import runner
from common.io import read_jsonl_lenient
from speech.audio import SAMPLE_RATE, load_audio
from speech.tts.infer import MANIFEST
from speech.vocoder.mel import LogMelSpectrogram, MelSpec


def pick(reqs: Sequence[Request], n: int, ids: Sequence[str] | None = None) -> list[Request]:
    """The requests named in ``ids``, or ``n`` of them spread over languages (the first of each, then the next)."""
    if ids:
        by_id = {q.id: q for q in reqs}
        if missing := [i for i in ids if i not in by_id]:
            raise SystemExit(f"tts_figures: ids {', '.join(missing)} are not among the requests")
        return [by_id[i] for i in ids]
    # Languages in turn, and within a language its speakers in turn: as many voices as the picture can hold.
    return in_turn(in_turn(reqs, lambda q: q.speaker), lambda q: q.lang)[:n]


def generated_wave(q: Request, folder: str | None, synth: Any, cfg: DictConfig) -> tuple[np.ndarray, str]:
    """The request's wav from ``folder``'s manifest, or synthesized now; and where it came from."""
    if folder is not None and (Path(folder) / MANIFEST).is_file():
        for row in read_jsonl_lenient(Path(folder) / MANIFEST):
            if str(row.get("id")) == q.id and "audio" in row:
                path = Path(folder) / str(row["audio"])
                return load_audio(path), str(path)
    out = synth().tts(q.text, q.lang, q.prompt, q.prompt_text, nfe=int(cfg.nfe), method=str(cfg.method),
                      guidance=float(cfg.guidance), sway=float(cfg.sway), seed=int(cfg.seed))
    return out.wav, f"synthesized (NFE {cfg.nfe}, {cfg.method}, seed {cfg.seed})"


def draw(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One row per sentence: prompt, generated, ground truth; time in seconds, mel bands up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = MelSpec()
    mel_of = LogMelSpectrogram(spec)
    with torch.no_grad():
        mels = [[mel_of(torch.from_numpy(w)[None])[0].T.numpy() for w in r["waves"]] for r in rows]  # [M, T] each
    hi = max(float(m.max()) for ms in mels for m in ms)
    lo = max(float(np.log(spec.floor)), hi - 12.0)  # 12 nats (~100 dB) of range: the floor is not the message
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 3.2 * len(rows)), squeeze=False, layout="constrained")
    image = None
    for i, (r, ms) in enumerate(zip(rows, mels, strict=True)):
        seconds = max(m.shape[1] for m in ms) * spec.hop / SAMPLE_RATE  # one time scale per row: lengths compare
        titles = (f"prompt ({r['speaker']})", "generated", f"ground truth ({r['speaker']})")
        for j, (m, title) in enumerate(zip(ms, titles, strict=True)):
            ax = axes[i][j]
            image = ax.imshow(m, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                              extent=(0.0, m.shape[1] * spec.hop / SAMPLE_RATE, 0, m.shape[0]))
            ax.set_xlim(0.0, seconds)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("seconds", fontsize=8)
            ax.set_ylabel("mel band" if j == 0 else "", fontsize=8)
        said = textwrap.shorten(r["text"], 100)
        axes[i][1].set_title(f"{r['lang']}: \u201c{said}\u201d\ngenerated", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="log mel magnitude")
    return save_png(fig, path)


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Draw the chosen sentences into ``cfg.out``; what each row shows."""
    runner.setup_threads(cfg.get("threads"))
    ids = [str(i) for i in cfg.ids] if cfg.get("ids") else None
    chosen = pick(load_requests(cfg.requests), int(cfg.n), ids)
    synth = synthesizer_loader(cfg.model, cfg.device)

    rows: list[dict[str, Any]] = []
    for q in chosen:
        try:
            gen, source = generated_wave(q, cfg.generated, synth, cfg)
        except ValueError as e:
            raise SystemExit(f"tts_figures: request {q.id}: {e}") from None
        rows.append({"id": q.id, "lang": q.lang, "text": q.text, "speaker": q.speaker, "prompt": q.prompt,
                     "generated": source, "reference": q.reference,
                     "waves": [load_audio(q.prompt), gen, load_audio(q.reference)]})
    out = draw(rows, Path(cfg.out))
    print(f"-> {out} ({len(rows)} sentences: {', '.join(r['id'] for r in rows)})")
    return [{k: v for k, v in r.items() if k != "waves"} for r in rows]


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="tts_figures")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "tts_figures", "benchmarks"))


def main(argv: list[str]) -> list[dict[str, Any]]:
    """``python benchmarks/tts_figures.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("tts_figures", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

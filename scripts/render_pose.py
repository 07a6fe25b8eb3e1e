"""Draw pose sequences as a PNG strip of skeleton frames (and optionally a GIF):
python scripts/render_pose.py input=<file.npy|file.pose|[a.npy,b.npy]> out=<strip.png> [gif=<anim.gif>]

Reads MediaPipe Holistic sequences (543 points): ``.npy`` [T, 543, 4] in normalised image coordinates with the
confidence as the 4th channel, or pose-format ``.pose`` files. Lost points (NaN or confidence 0) are not drawn.
Keys in configs/inference/render_pose.yaml; the drawing is datamodules/corpus/sign_render.py.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import hydra
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig

from common import runner
from common.io import atomic_open
from datamodules.corpus import sign_render
from datamodules.corpus.sign_render import save_gif, strip


def load(path: str) -> tuple[np.ndarray, float | None]:
    """Points [T, 543, 3] (NaN where lost) and the frame aspect if the file knows it; exits naming a bad file."""
    try:
        return sign_render.load(path)
    except ValueError as e:
        raise SystemExit(str(e)) from e


def _save_png(fig: Figure, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())


def run(cfg: DictConfig) -> list[str]:
    """Draw ``cfg.input`` to ``cfg.out`` (and ``cfg.gif``); returns the written paths."""
    inputs = [str(p) for p in cfg.input] if isinstance(cfg.input, (list, ListConfig)) else [str(cfg.input)]
    loaded = [load(p) for p in inputs]
    aspect = float(cfg.aspect or loaded[0][1] or 4 / 3)
    titles = [str(t) for t in cfg.titles] if cfg.titles else [Path(p).stem for p in inputs]
    if len(titles) != len(inputs):
        raise SystemExit(f"render_pose: {len(titles)} titles for {len(inputs)} inputs")
    fig = strip([s for s, _ in loaded], titles, aspect, int(cfg.frames), float(cfg.frame_inches))
    _save_png(fig, str(cfg.out))
    plt.close(fig)
    written = [str(cfg.out)]
    if cfg.gif:
        save_gif(loaded[0][0], aspect, str(cfg.gif))
        written.append(str(cfg.gif))
    print("\n".join(written), file=sys.stderr)
    return written


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="render_pose")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "render_pose"))


if __name__ == "__main__":
    main()

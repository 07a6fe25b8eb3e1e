"""The web app: python scripts/app.py models=<folder> [port=7860] [media=[<folder>, ...]]

Serves a Gradio app on localhost with one tab for each family whose models are found under ``models``:
Transcribe (CTC models), Synthesize (TTS bundles), Trace the source (source tracers), Search (retrieval indexes
from scripts/retrieve.py) and Translate sign (sign translators). Keys and
defaults: configs/app.yaml; the app: webapp/ (docs/app.md). It never reaches the internet (no share link, no
analytics, local fonts).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runner
from webapp.app import AppSettings, build_app, launch

log = logging.getLogger("app")


def settings(cfg: DictConfig) -> AppSettings:
    """The app's settings from the composed config."""
    media = OmegaConf.to_container(cfg.media) if OmegaConf.is_config(cfg.media) else cfg.media
    return AppSettings(str(cfg.models), [str(m) for m in (media or [])], str(cfg.device), int(cfg.depth),
                       str(cfg.title))


def run(cfg: DictConfig, block: bool = True) -> str:
    """Build and serve the app; its URL (returned at once with ``block=False``, after shutdown otherwise)."""
    runner.setup_threads(cfg.get("threads"))
    s = settings(cfg)
    try:
        built = build_app(s)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"app: {e}") from None
    log.info("tabs: %s", ", ".join(f"{t.label} ({len(built.discovery.of_kind(t.kinds))})" for t in built.tabs))
    return launch(built, s, str(cfg.host), int(cfg.port), block)


@hydra.main(version_base="1.3", config_path="../configs", config_name="app")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "app"))


if __name__ == "__main__":
    main()

"""Language-ID head for a trained CTC model, fitted on its frozen encoder and saved into the model directory.

    python scripts/build_lid.py model=runs/train/myrun/model train=data/speech/train.jsonl dev=data/speech/dev.jsonl

The encoder frames of every training clip are computed once; the head (attentive statistics pooling and
an MLP, see speech/asr/lid.py) then trains on random 1-4 s crops of them, so it also names the language
of short segments. The ASR weights are untouched. Writes ``<model>/lid.safetensors`` and ``<model>/lid.json``,
which ``Transcriber.from_pretrained`` and ``transcribe.py`` (lid=true, the default when present) pick up.
Options (configs/inference/build_lid.yaml): epochs=30, batch_size=64, lr=0.002, max_per_lang=<clips per
language> (default all), device=cpu, seed=0, threads=<n>.
"""

from __future__ import annotations

import time
from dataclasses import fields

import hydra
from omegaconf import DictConfig

from common import runner
from speech.asr.hub import load_model
from speech.asr.lid import save_lid
from speech.asr.lid_train import LIDTrainConfig, cache_manifest, frame_seconds_of, train_head


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit the head, save it into the model directory and return its metrics."""
    runner.setup_threads(cfg.threads)
    train_cfg = LIDTrainConfig(**{f.name: cfg[f.name] for f in fields(LIDTrainConfig)})
    model, _ = load_model(cfg.model, cfg.device)
    fs = frame_seconds_of(model, cfg.device)
    t0 = time.perf_counter()
    train = cache_manifest(model, cfg.train, cfg.device, train_cfg.max_per_lang, train_cfg.seed,
                           train_cfg.encode_batch)
    dev = cache_manifest(model, cfg.dev, cfg.device, batch=train_cfg.encode_batch) if cfg.dev else None
    t1 = time.perf_counter()
    head, metrics = train_head(train, dev, fs, train_cfg)
    t2 = time.perf_counter()
    path = save_lid(head, cfg.model, train_clips=len(train.labels), **metrics)
    print(f"LID head over {len(head.cfg.langs)} languages ({', '.join(head.cfg.langs)}) from {len(train.labels)} "
          f"clips: encoding {t1 - t0:.0f} s, training {t2 - t1:.0f} s; "
          + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()) + f" -> {path}")
    return metrics


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="build_lid")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "build_lid"))


if __name__ == "__main__":
    main()

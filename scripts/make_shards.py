"""Pack a speech manifest into WebDataset tar shards for streamed training.

    python scripts/make_shards.py manifest=data/speech/train.jsonl output=data/speech/shards/train [shard_size=1000]

Each utterance is loaded as 16 kHz mono and stored as 16-bit audio with its transcript and metadata;
``output`` gets ``shard-000000.tar`` ..., one ``shard-NNNNNN.json`` sidecar per shard and the index
``shards.json``. Re-running keeps the shards already made from the same rows and writes the rest.
Unusable audio is skipped and listed (``<output>/bad_inputs.jsonl``); the exit code is then 3.
Train on them with ``python scripts/train.py experiment=asr_lowres data=speech_shards data.train_shards=<output>``.

Options (configs/inference/make_shards.yaml): shard_size=1000 (utterances a shard), format=flac|wav,
workers=0 (decoding processes), bad_log=<path>.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from common import runner
from datamodules.shards import INDEX, write_shards


def run(cfg: DictConfig) -> dict[str, Any]:
    """Write (or complete) the shards; returns the index, whose ``skipped`` lists the unusable inputs."""
    index = write_shards(cfg.manifest, cfg.output, shard_size=cfg.shard_size, audio_format=cfg.format,
                         workers=cfg.workers, bad_audio_log=cfg.bad_log or None)
    print(f"{index['samples']} utterances ({index['seconds'] / 3600:.2f} h) in {len(index['shards'])} shard(s) "
          f"-> {Path(cfg.output) / INDEX}")
    if index["skipped"]:
        lines = "\n".join(f"  {s['audio']}: {s['reason']}" for s in index["skipped"])
        print(f"{len(index['skipped'])} file(s) skipped:\n{lines}", file=sys.stderr)
    return index


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="make_shards")
def main(cfg: DictConfig) -> None:
    if run(runner.require(cfg, "make_shards"))["skipped"]:
        sys.exit(3)


if __name__ == "__main__":
    main()

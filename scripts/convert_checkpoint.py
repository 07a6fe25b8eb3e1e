"""Checkpoint conversion between transformers Wav2Vec2ForCTC (wav2vec2, XLS-R, MMS) and the suite's CTC models.

    python scripts/convert_checkpoint.py import=<transformers dir> output=<suite dir> [target_lang=<mms key>]
    python scripts/convert_checkpoint.py export=<suite wav2vec2 dir> output=<dir transformers loads>

The work is ``speech.asr.interop.hf.run`` (load_hf / export_hf); a directory that cannot be converted exits with
one line naming it and the reason. Keys in configs/inference/convert_checkpoint.yaml.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from common import runner
from speech.asr.interop.hf import run


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="convert_checkpoint")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "convert_checkpoint"))


if __name__ == "__main__":
    main()

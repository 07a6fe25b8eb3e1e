"""Pick the log-mel hop a conformer CTC model reads at on a dev manifest, and save it into the model directory.

    python scripts/tune_decode_hop.py model=runs/train/myrun/model dev=data/speech/dev.jsonl

The model trains on 10 ms frames, 25 encoder frames a second after 4x subsampling, and character CTC needs a frame
for every letter and one between repeats: fast speech, and languages with many letters to a second, run short of
them. Read with a finer hop, the same speech arrives as if slower, with the same spectra. Each hop of ``hops_ms``
decodes ``dev`` with the language given (the directory's decoder: greedy before build_lm.py), and the one with
the lowest CER goes into ``config.json`` as ``decode_hop_ms``, which every later load of the directory uses. Run it
before build_lid.py and build_lm.py: the LID head and the LM weights are fitted on the frames it gives.
Options (configs/inference/tune_decode_hop.yaml): hops_ms=[10,9,8,7], threads=<n>, save=false (print the CER at
each hop, e.g. on a test split, and leave config.json alone).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from common import hub, runner
from common.metrics import format_table
from speech.asr.infer import Transcriber
from speech.asr.tuning import hop_error_rates, manifest_audio


def run(cfg: DictConfig) -> float:
    """Decode dev at each hop, save the best into the model's config.json (unless ``save`` is false); return it."""
    runner.setup_threads(cfg.threads)
    config = hub.read_config(cfg.model)  # a missing or broken directory says so before any audio is read
    rows = manifest_audio(cfg.dev)
    if not rows:
        raise ValueError(f"{cfg.dev}: no readable rows to tune on")
    t = Transcriber.from_pretrained(cfg.model, lid=False)
    results = hop_error_rates(t, rows, [float(h) for h in cfg.hops_ms])
    for ms, summary in results.items():
        per_lang = " ".join(f"{lang[:3]} {100 * m['cer']:.2f}" for lang, m in summary.items() if lang != "all")
        print(f"[decode hop] {ms:g} ms: CER {100 * summary['all']['cer']:.2f}% ({per_lang}) on {cfg.dev}")
    best = min(results, key=lambda ms: results[ms]["all"]["cer"])
    print(f"[decode hop] {best:g} ms, per language:\n{format_table(results[best])}")
    if not cfg.save:
        return best
    path = Path(cfg.model) / hub.DEFAULT_LAYOUT.config
    hub.write_json(path, {**config, "decode_hop_ms": best})
    print(f"[decode hop] {best:g} ms -> {path}")
    return best


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="tune_decode_hop")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "tune_decode_hop"))


if __name__ == "__main__":
    main()

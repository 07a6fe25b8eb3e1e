"""Real-sentence xsim against the amount of real parallel text in training: short fixed-step trainings.

    python benchmarks/text_real_curve.py [sizes=[0,1000,4000,all]] [steps=1500] [out=runs/bench/text_real_curve]
        [eval_sentences=1000] [train_overrides=[trainer.precision=32-true]]

Each point trains experiment=text_encoder_real for ``steps`` steps (no time limit, no early stopping) on the first N
rows of data/text_real's train split plus all of the generated corpus (rows in their natural proportion; N=0 is
the generated corpus alone), then scores the export on the out-of-domain real test (held-out Debian packages,
data.ood_manifest) and on the generated-grammar test. All points share one tokenizer (trained on both mono sets by
the first). Prints English<->X xsim error per language and writes curve.json. Needs both corpora
(python scripts/make_corpus.py corpus=text && python scripts/make_corpus.py corpus=text_real).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from common import runner
from common.io import atomic_open
from text.xsim import evaluate_encoder

ROOT = Path(__file__).resolve().parents[1]
PIVOT = "eng_Latn"


def pivot_errors(matrix: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per language X, the mean of eng->X and X->eng xsim error (pairs scored by evaluate_encoder)."""
    out = {}
    for lang in sorted(matrix.get(PIVOT, {})):
        pair = [e for e in (matrix[PIVOT].get(lang), matrix.get(lang, {}).get(PIVOT)) if e is not None]
        out[lang] = sum(pair) / len(pair)
    return out


def point_config(size: str, steps: int, out: Path, overrides: list[str]) -> Any:
    """experiment=text_encoder_real for ``steps`` steps on the first ``size`` real rows (``all``, or 0: none)."""
    if size == "all":
        data = ["data.train_weights=null"]
    elif int(size) == 0:
        data = ["data.train_weights={real: 0, generated: 1}"]
    else:
        data = [f"+data.train_rows={{real: {int(size)}}}", "data.train_weights=null"]
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "experiment=text_encoder_real", f"trainer.max_steps={steps}", "trainer.max_time=null", "test=false",
            "callbacks.early_stopping=null", f"data.tokenizer_path={out / 'tokenizer.model'}", *data, *overrides,
        ])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / f"real_{size}")
    return cfg


def train_point(size: str, steps: int, out: Path, overrides: list[str]) -> Path:
    """Train one point; returns its exported model directory (kept: a re-run skips finished points)."""
    model = out / f"real_{size}" / "model"
    if (model / "config.json").is_file():
        return model
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    assert spec and spec.loader
    train_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_script)
    train_script.train(point_config(size, steps, out, overrides))
    return model


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    runner.register_resolvers()
    out, steps, limit = Path(cfg.out), int(cfg.steps), int(cfg.eval_sentences)
    overrides = [str(x) for x in cfg.train_overrides]
    data = ROOT / "data"
    points: list[dict[str, Any]] = []
    for size in [str(x) for x in cfg.sizes]:
        start = time.perf_counter()
        model = train_point(size, steps, out, overrides)
        ood = evaluate_encoder(model, data / "text_real/parallel/test_ood.jsonl", model.parent / "ood", limit)
        gen = evaluate_encoder(model, data / "text/parallel/test.jsonl", model.parent / "test", limit)
        points.append({"real_rows": size, "seconds": round(time.perf_counter() - start, 1),
                       "ood_mean": ood["mean_xsim_trained"], "generated_mean": gen["mean_xsim_trained"],
                       "ood_eng_x": pivot_errors(ood["xsim_error"])})  # type: ignore[arg-type]
        print(f"real rows {size}: done in {points[-1]['seconds']:.0f} s", flush=True)
    langs = sorted({lang for p in points for lang in p["ood_eng_x"]})
    print(f"\nxsim error % after {steps} steps; OOD = held-out Debian packages, eng<->X mean of both directions")
    print(f"{'real rows':>9} {'generated':>10} {'OOD mean':>9}" + "".join(f"{x[:8]:>9}" for x in langs))
    for p in points:
        cells = "".join(f"{100 * p['ood_eng_x'][x]:>9.2f}" if x in p["ood_eng_x"] else f"{'.':>9}" for x in langs)
        print(f"{p['real_rows']:>9} {100 * p['generated_mean']:>10.2f} {100 * p['ood_mean']:>9.2f}{cells}")
    with atomic_open(out / "curve.json", "w", encoding="utf-8") as f:
        json.dump({"steps": steps, "overrides": overrides, "points": points}, f, indent=2)
    print(f"wrote {out / 'curve.json'}")
    return points


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="text_real_curve")
def _cli(cfg: DictConfig) -> None:
    run(cfg)


def main(argv: list[str]) -> list[dict[str, Any]]:
    """``python benchmarks/text_real_curve.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("text_real_curve", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

"""Real-sentence xsim against the amount of real parallel text in training: short fixed-step trainings.

    python benchmarks/text_real_curve.py [sizes=[0,4000,16000,all]] [steps=800] [real_corpus=data/text_real_large]
        [out=runs/bench/text_real_curve] [eval_sentences=1000] [train_overrides=[...]] [figure=<png or null>]

Each point trains experiment=text_encoder_real (the n-gram bag encoder, batch 512) for exactly ``steps`` steps (no
time limit, no early stopping) on the first N rows of ``real_corpus``'s train split plus all of the generated corpus
(rows in their natural proportion; N=0 is the generated corpus alone; all: every real row), validated on that
corpus's dev split, then scores the export on the out-of-domain real test (``ood_manifest``: held-out Debian
packages, text_real's by default so every corpus is scored on the same test) and on the generated-grammar test.
All points share one tokenizer (trained on ``real_corpus``'s and the generated mono sets by the first point).
Prints English<->X xsim error per language and the mean between non-English pairs, writes curve.json and the
figure. Needs the corpora (python scripts/make_corpus.py corpus=text && ... corpus=text_real [corpus=text_real_large]).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import hydra
from hydra import compose
from omegaconf import DictConfig, open_dict

from common import runner
from common.io import atomic_open
from text.parallel import PIVOT
from text.xsim import evaluate_encoder

ROOT = Path(__file__).resolve().parents[1]


def pivot_errors(matrix: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per language X, the mean of eng->X and X->eng xsim error (pairs scored by evaluate_encoder)."""
    out = {}
    for lang in sorted(matrix.get(PIVOT, {})):
        pair = [e for e in (matrix[PIVOT].get(lang), matrix.get(lang, {}).get(PIVOT)) if e is not None]
        out[lang] = sum(pair) / len(pair)
    return out


def count_rows(manifest: Path) -> int:
    """Rows of a jsonl manifest."""
    with manifest.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def point_config(size: str, steps: int, out: Path, corpus: Path, overrides: list[str]) -> Any:
    """experiment=text_encoder_real for ``steps`` steps on the first ``size`` real rows (``all``, or 0: none)."""
    # The curve is over real rows beside the generated ones: the dictionary source is left out.
    real = [f"data.train_manifest.real={corpus / 'parallel/train.jsonl'}", f"data.mono_dir.real={corpus / 'mono'}",
            f"data.val_manifest={corpus / 'parallel/dev.jsonl'}",
            "~data.train_manifest.dict", "~data.train_weights.dict"]
    if size == "all":
        data = ["data.train_weights=null"]
    elif int(size) == 0:
        data = ["data.train_weights.real=0", "data.train_weights.generated=1"]
    else:
        data = [f"+data.train_rows={{real: {int(size)}}}", "data.train_weights=null"]
    with runner.train_configs():
        cfg = compose("train", overrides=[
            "experiment=text_encoder_real", f"trainer.max_steps={steps}", "trainer.max_time=null", "test=false",
            "callbacks.early_stopping=null", f"data.tokenizer_path={out / 'tokenizer.model'}", *real, *data,
            *overrides,
        ])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / f"real_{size}")
    return cfg


def train_point(size: str, steps: int, out: Path, corpus: Path, overrides: list[str]) -> Path:
    """Train one point; returns its exported model directory (kept: a re-run skips finished points)."""
    model = out / f"real_{size}" / "model"
    if (model / "config.json").is_file():
        return model
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    assert spec and spec.loader
    train_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_script)
    train_script.train(point_config(size, steps, out, corpus, overrides))
    return model


def plot(points: list[dict[str, Any]], steps: int, path: Path) -> None:
    """OOD English<->X and X<->Y means and the generated test against real rows (symlog x: 0 is a point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [p["rows_used"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rows, [100 * p["ood_eng_x_mean"] for p in points], "o-", label="OOD real, English<->X")
    if all(p["ood_x_y_mean"] is not None for p in points):
        ax.plot(rows, [100 * p["ood_x_y_mean"] for p in points], "s-", label="OOD real, X<->Y")
    ax.plot(rows, [100 * p["generated_mean"] for p in points], "^--", label="generated-grammar test")
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_xticks([0, 1000, 10000, 100000], ["0", "1k", "10k", "100k"])
    ax.set(xlabel="real parallel rows in training", ylabel="xsim error (%)", ylim=(0, 100),
           title=f"Sentence encoder (n-gram bag), {steps} steps a point")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    runner.register_resolvers()
    out, steps, limit = Path(cfg.out), int(cfg.steps), int(cfg.eval_sentences)
    overrides = [str(x) for x in cfg.train_overrides]
    corpus, ood_manifest = ROOT / str(cfg.real_corpus), ROOT / str(cfg.ood_manifest)
    total = count_rows(corpus / "parallel/train.jsonl")
    points: list[dict[str, Any]] = []
    for size in [str(x) for x in cfg.sizes]:
        start = time.perf_counter()
        model = train_point(size, steps, out, corpus, overrides)
        ood = evaluate_encoder(model, ood_manifest, model.parent / "ood", limit)
        gen = evaluate_encoder(model, ROOT / "data/text/parallel/test.jsonl", model.parent / "test", limit)
        eng_x = pivot_errors(ood["xsim_error"])  # type: ignore[arg-type]
        trained = [str(x) for x in ood["trained_langs"] if x != PIVOT]  # type: ignore[attr-defined]
        eng_x_trained = [eng_x[x] for x in trained if x in eng_x]
        points.append({"real_rows": size, "rows_used": total if size == "all" else min(int(size), total),
                       "seconds": round(time.perf_counter() - start, 1),
                       "ood_mean": ood["mean_xsim_trained"], "generated_mean": gen["mean_xsim_trained"],
                       "ood_eng_x_mean": sum(eng_x_trained) / max(1, len(eng_x_trained)),
                       # Over the trained non-English pairs, as scripts/eval.py reports it (text.xsim.pivot_figures).
                       "ood_x_y_mean": ood.get("mean_xsim_others"),
                       "ood_eng_x": eng_x})
        print(f"real rows {size}: done in {points[-1]['seconds']:.0f} s", flush=True)
    langs = sorted({lang for p in points for lang in p["ood_eng_x"]})
    print(f"\nxsim error % after {steps} steps; OOD = {ood_manifest.relative_to(ROOT)}, eng<->X mean of both "
          f"directions; X<->Y = mean over the trained non-English pairs")
    head = f"{'real rows':>9} {'generated':>10} {'OOD eng-X':>10} {'OOD X-Y':>8}"
    print(head + "".join(f"{x[:8]:>9}" for x in langs))
    for p in points:
        cells = "".join(f"{100 * p['ood_eng_x'][x]:>9.2f}" if x in p["ood_eng_x"] else f"{'.':>9}" for x in langs)
        xy = f"{100 * p['ood_x_y_mean']:>8.2f}" if p["ood_x_y_mean"] is not None else f"{'.':>8}"
        print(f"{p['rows_used']:>9} {100 * p['generated_mean']:>10.2f} {100 * p['ood_eng_x_mean']:>10.2f} {xy}{cells}")
    with atomic_open(out / "curve.json", "w", encoding="utf-8") as f:
        json.dump({"steps": steps, "real_corpus": str(cfg.real_corpus), "ood_manifest": str(cfg.ood_manifest),
                   "overrides": overrides, "points": points}, f, indent=2)
    print(f"wrote {out / 'curve.json'}")
    if cfg.get("figure"):
        plot(points, steps, ROOT / str(cfg.figure))
        print(f"wrote {cfg.figure}")
    return points


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="text_real_curve")
def _cli(cfg: DictConfig) -> None:
    run(cfg)


def main(argv: list[str]) -> list[dict[str, Any]]:
    """``python benchmarks/text_real_curve.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("text_real_curve", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

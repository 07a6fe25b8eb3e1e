"""SONAR-SLT ablation: coupled augmentation on and off at 100, 25 and 10 % of the sign training clips.

    python benchmarks/slt_ablation.py [decoder=runs/train/slt_sonar_default/model] [minutes=4]
        [fractions=[1.0,0.25,0.1]] [eval_clips=200] [out=runs/benchmarks/slt_ablation]
        [steps=null] [unpaired_lang=ita_Latn] [figure=docs/figures/slt_ablation.png] [train_overrides=[...]]

Each run trains experiment=slt_sonar's pose encoder for ``minutes`` of wall time, or ``steps`` steps if that comes
first (the steps it reached go in the table; on a shared machine a fixed ``steps`` keeps the runs comparable), on
the first ``fraction`` of the training clips (data.train_fraction, one fixed sample), against the frozen decoder of
``decoder`` (trained on text alone, so the runs differ only in what the pose encoder saw). *Coupled*: each clip is
paired with a translation drawn from every corpus language and its poses are perturbed (speed, affine, jitter,
frame drop, an occluded hand); *none*: the clips are paired with ``single_lang`` only and not perturbed.
Every run is scored on the same ``eval_clips`` held-out test clips (held-out sentences by held-out signers), greedy,
in every language: chrF and BLEU (sacrebleu) and the embedding cosine. Finished runs are kept in ``out/rows.jsonl``
and skipped on a re-run with the same settings. Writes ``out/ablation.{json,md}`` and the figure.
"""

from __future__ import annotations

import importlib.util
import json
import random
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra import compose
from omegaconf import DictConfig, open_dict

from common import runner
from common.io import append_jsonl, atomic_open, read_jsonl_lenient
from vision.sign.evaluation import Scores
from vision.sign.module import SignTranslationModule

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("coupled", "none")
UNPAIRED = "coupled, unpaired"
"""The extra cell: coupled augmentation on all the clips, with ``unpaired_lang`` never paired with a clip."""


def run_config(setting: str, fraction: float, args: DictConfig, out: Path) -> DictConfig:
    """experiment=slt_sonar for one ablation cell: the pose encoder only, ``args.minutes`` of wall time."""
    seconds = round(float(args.minutes) * 60)
    plain = ["data.pipeline.augment=null", f"data.train_langs=[{args.single_lang}]"] if setting == "none" else []
    if setting == UNPAIRED:
        plain = [f"data.train_langs=[{','.join(x for x in corpus_langs(args) if x != args.unpaired_lang)}]"]
    with runner.train_configs():
        cfg = compose("train", overrides=[
            "experiment=slt_sonar", f"data.train_fraction={fraction}", f"model.init_decoder={args.decoder}",
            "model.ae_weight=0", "model.decoder_steps=0", "data.ae_batch_size=0",
            f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            f"trainer.max_steps={int(args.steps) if args.get('steps') else 1000000}",
            "trainer.limit_val_batches=0", "trainer.min_epochs=0", "callbacks.early_stopping=null",
            "callbacks.model_checkpoint.monitor=null",
            "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", "logger=csv", "test=false",
            f"threads={int(args.threads)}", *plain, *[str(x) for x in args.train_overrides],
        ])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / f"{setting.replace(', ', '_')}_{round(100 * fraction)}")
    return cfg


def corpus_langs(args: DictConfig) -> list[str]:
    """The languages of the training clips' translations."""
    with runner.train_configs():
        manifest = compose("train", overrides=["experiment=slt_sonar", *[str(x) for x in args.train_overrides]])
    runner.register_resolvers()
    first = Path(str(manifest.data.train_manifest)).read_text(encoding="utf-8").split("\n", 1)[0]
    return sorted(json.loads(first)["texts"])


def train_run(cfg: DictConfig) -> tuple[Path, int, float]:
    """Train one cell (kept: a finished model is reused); returns its model directory, steps and seconds."""
    run_dir = Path(cfg.paths.output_dir)
    model = run_dir / "model"
    start = time.perf_counter()
    if not (model / "config.json").is_file():
        spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
        assert spec and spec.loader
        train_script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train_script)
        train_script.train(cfg)
    seconds = time.perf_counter() - start
    steps = 0
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        steps = int(torch.load(last, map_location="cpu", weights_only=True).get("global_step", 0))
    return model, steps, seconds


@torch.inference_mode()
def score(model_dir: Path, cfg: DictConfig, clips: int, max_tokens: int = 64) -> dict[str, dict[str, float]]:
    """Greedy chrF, BLEU and cosine per language on a fixed sample of ``clips`` test clips."""
    module = SignTranslationModule.load_for_eval(str(model_dir)).eval()
    # Searches stop at the longest reference (a weak encoder's embeddings may never lead to an end of sentence).
    module.net.decoder.cfg.max_length = min(module.net.decoder.cfg.max_length, int(max_tokens))
    dm = hydra.utils.instantiate(cfg.data, _convert_="all", tokenizer_path=str(module.tokenizer.path))
    test = str(cfg.data.test_manifest["test"])
    rows = dm.rows("test:test", test)
    rows = random.Random(0).sample(rows, min(clips, len(rows)))
    scores = Scores()
    for batch in dm.clip_loader(rows, dm.eval_langs(rows), False):
        if batch is not None:
            module.score_batch(batch, scores, beam=1)
    return scores.summary()


def write_outputs(result: dict[str, Any], out: Path, figure: Path | None) -> str:
    """ablation.json, ablation.md (the table) and the figure, each atomically; returns the table."""
    rows = result["rows"]
    langs = sorted({lang for r in rows for lang in r["chrf"]})
    head = ("| augmentation | data | clips | steps | train min | cos | chrF mean | BLEU mean | "
            + " | ".join(f"chrF {lang[:3]}" for lang in langs) + " |")
    lines = [f"Pose encoder trained {result['minutes']} min of wall time per run (2 shared CPU cores) against the "
             f"frozen decoder of {result['decoder']}; {result['eval_clips']} held-out test clips (held-out sentences "
             "by held-out signers), greedy. coupled: translations in every language + pose perturbations; none: "
             f"{result['single_lang']} targets, no perturbation; coupled, unpaired: coupled, but "
             f"{result['unpaired_lang']} never paired with a clip (the decoder learnt it from text).", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = " | ".join(f"{r['chrf'][lang]:.1f}" if lang in r["chrf"] else "." for lang in langs)
        lines.append(f"| {r['setting']} | {100 * r['fraction']:.0f}% | {r['clips']} | {r['steps']} | "
                     f"{r['train_seconds'] / 60:.1f} | {r['cos']:.3f} | {r['chrf_mean']:.1f} | {r['bleu_mean']:.1f} | "
                     f"{cells} |")
    table = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "ablation.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
    with atomic_open(out / "ablation.md", "w", encoding="utf-8") as f:
        f.write(table)
    if figure is not None:
        plot(result, figure)
    return table


def plot(result: dict[str, Any], path: Path) -> None:
    """Mean chrF and embedding cosine against the share of training clips, with and without coupled augmentation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for setting, style in zip(SETTINGS, ("o-", "s--")):
        rows = sorted((r for r in result["rows"] if r["setting"] == setting), key=lambda r: r["fraction"])
        xs = [100 * r["fraction"] for r in rows]
        axes[0].plot(xs, [r["chrf_mean"] for r in rows], style, label=setting)
        axes[1].plot(xs, [r["cos"] for r in rows], style, label=setting)
        for ax, key in zip(axes, ("chrf_mean", "cos")):  # the steps each run reached in its minutes
            for x, r in zip(xs, rows):
                ax.annotate(f"{r['steps']}", (x, r[key]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for ax, label in zip(axes, ("chrF, mean over languages", "cosine to the target embedding")):
        ax.set_xscale("log")
        ax.set_xticks([10, 25, 100], ["10%", "25%", "100%"])
        ax.set(xlabel="share of the sign training clips", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(title="coupled augmentation")
    fig.suptitle(f"SONAR-SLT, held-out sentences by held-out signers; {result['minutes']} min of training a run "
                 "(numbers: steps reached)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def run(args: DictConfig) -> dict[str, Any]:
    """Train and score every cell not done yet; print and write the table and the figure."""
    runner.register_resolvers()
    torch.set_num_threads(int(args.threads))
    out = ROOT / str(args.out)
    if not (ROOT / str(args.decoder) / "config.json").is_file():
        raise SystemExit(f"decoder={args.decoder}: no exported model there (train experiment=slt_sonar first)")
    setting_key = {"minutes": float(args.minutes), **({"steps": int(args.steps)} if args.get("steps") else {}),
                   "decoder": str(args.decoder), "eval_clips": int(args.eval_clips),
                   "single_lang": str(args.single_lang), "train_overrides": [str(x) for x in args.train_overrides]}
    done = {(r["setting"], r["fraction"]): r for r in read_jsonl_lenient(out / "rows.jsonl")
            if r.get("key") == setting_key}
    rows = []
    cells = [(setting, float(f)) for f in args.fractions for setting in SETTINGS]
    if args.get("unpaired_lang"):
        cells.append((UNPAIRED, 1.0))
    for setting, fraction in cells:
        if (setting, fraction) not in done:
            cfg = run_config(setting, fraction, args, out)
            model, steps, seconds = train_run(cfg)
            summary = score(model, cfg, int(args.eval_clips))
            mean = summary.pop("mean")
            total = len(Path(cfg.data.train_manifest).read_text(encoding="utf-8").splitlines())
            n_clips = max(1, round(fraction * total))
            row = {"key": setting_key, "setting": setting, "fraction": fraction, "clips": n_clips, "steps": steps,
                   "train_seconds": round(seconds, 1), "cos": mean["cos"], "chrf_mean": mean["chrf"],
                   "bleu_mean": mean["bleu"], "chrf": {k: m["chrf"] for k, m in summary.items()},
                   "bleu": {k: m["bleu"] for k, m in summary.items()}}
            append_jsonl(out / "rows.jsonl", row)
            done[(setting, fraction)] = row
            print(json.dumps({k: v for k, v in row.items() if k != "key"}), flush=True)
        rows.append(done[(setting, fraction)])
    result = {**setting_key, "unpaired_lang": args.get("unpaired_lang"), "rows": rows}
    table = write_outputs(result, out, ROOT / str(args.figure) if args.get("figure") else None)
    print(table)
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="slt_ablation")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "slt_ablation", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/slt_ablation.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("slt_ablation", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

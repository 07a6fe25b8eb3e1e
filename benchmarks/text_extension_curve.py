"""Language extension by distillation: xsim error of a held-out language against the number of parallel pairs.

    python benchmarks/text_extension_curve.py model=<text encoder dir> [lang=tur_Latn] [sizes=[50,100,200,500]]
        [steps=300] [lr=3e-3] [batch_size=32] [data=data/text/parallel] [test=<parallel .jsonl>] [limit=1000]
        [out=runs/bench/text_extension] [threads=1]
        [new_pieces=1000] [update=new|all] [init=aligned|spelled] [fold_case=true] [mono=] [bag_rows=65536]
        (the last line: text.extend's)

For each size, distils the encoder onto ``lang`` from the first N pairs of ``data``/train.eng_Latn-<lang>.tsv, then
measures xsim (ratio margin) on ``test`` (default ``data``/test.jsonl; real text: e.g. the held-out packages'
test_ood.jsonl): eng<->lang, and lang<->every trained language (mean of both directions).
Prints a table and writes curve.json and curve.png.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from common import runner
from common.io import atomic_open
from text.extend import extend, read_pairs, recipe_options
from text.sentence_encoder import read_config
from text.xsim import evaluate_encoder, mean_error


def held_out_errors(model_dir: str | Path, test: Path, out_dir: Path, lang: str, trained: list[str],
                    limit: int) -> dict[str, float]:
    """xsim eng->lang, lang->eng, the mean over lang<->each trained language, and the mean among the trained ones
    (which moves only when extension changes the old languages), as ``scripts/eval.py`` scores a split: the first
    ``limit`` rows with two languages, each pair on the rows both have (real text has gaps)."""
    matrix = evaluate_encoder(model_dir, test, out_dir, limit=limit)["xsim_error"]
    assert isinstance(matrix, dict)
    pairs = [e for b in trained for e in (matrix[lang].get(b), matrix.get(b, {}).get(lang)) if e is not None]
    return {"eng->lang": matrix["eng_Latn"][lang], "lang->eng": matrix[lang]["eng_Latn"],
            "lang<->trained": sum(pairs) / max(len(pairs), 1), "trained": mean_error(matrix, trained)}


def plot(rows: list[dict[str, float]], lang: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    sizes = [r["pairs"] for r in rows]
    for key in ("eng->lang", "lang->eng", "lang<->trained"):
        ax.plot(sizes, [100 * r[key] for r in rows], marker="o", label=key.replace("lang", lang))
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.set_xlabel("parallel pairs (English-" + lang + ")")
    ax.set_ylabel("xsim error (%)")
    ax.set_title(f"Extending the sentence encoder to {lang}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def run(cfg: DictConfig) -> None:
    """Distil onto ``cfg.lang`` at every size, print the table and write curve.json and curve.png."""
    model_dir, lang = str(cfg.model), str(cfg.lang)
    sizes = [int(s) for s in cfg.sizes]
    steps, data = int(cfg.steps), Path(cfg.data)
    lr = float(cfg.lr)
    options = recipe_options(cfg)
    shown = {**options, "mono": cfg.mono or None}  # the file, not its lines
    out = Path(cfg.out)
    torch.set_num_threads(int(cfg.threads))
    trained = [x for x in read_config(model_dir)["langs"] if x != lang]
    test, limit = Path(cfg.test) if cfg.test else data / "test.jsonl", int(cfg.limit)
    rows = [{"pairs": 0, "seconds": 0.0, **held_out_errors(model_dir, test, out / "xsim0", lang, trained, limit)}]
    pool = read_pairs(data / f"train.eng_Latn-{lang}.tsv", max(sizes))
    for n in sizes:
        start = time.perf_counter()
        extend(model_dir, lang, pool[:n], out / f"pairs{n}", steps=steps, lr=lr, batch_size=int(cfg.batch_size),
               **options)
        seconds = time.perf_counter() - start
        rows.append({"pairs": n, "seconds": round(seconds, 1),  # the student cuts lang with pieces of its own
                     **held_out_errors(out / f"pairs{n}", test, out / f"xsim{n}", lang, trained, limit)})
        print(f"{n} pairs done in {seconds:.0f} s", flush=True)
    print(f"\nxsim error % on {test} (first {limit} rows with two languages), {steps} distillation steps per size, "
          f"lr {lr}, {shown}")
    print(f"{'pairs':>6} {'eng->' + lang:>14} {lang + '->eng':>14} {lang + '<->trained':>19} "
          f"{'trained<->trained':>18} {'seconds':>8}")
    for r in rows:
        print(f"{int(r['pairs']):>6} {100 * r['eng->lang']:>14.2f} {100 * r['lang->eng']:>14.2f} "
              f"{100 * r['lang<->trained']:>19.2f} {100 * r['trained']:>18.2f} {r['seconds']:>8.1f}")
    with atomic_open(out / "curve.json", "w", encoding="utf-8") as f:
        json.dump({"model": model_dir, "lang": lang, "steps": steps, "lr": lr, **shown, "rows": rows}, f, indent=2)
    plot(rows[1:], lang, out / "curve.png")
    print(f"wrote {out / 'curve.json'} and {out / 'curve.png'}")


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="text_extension_curve")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "text_extension_curve", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/text_extension_curve.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("text_extension_curve", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

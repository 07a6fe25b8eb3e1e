"""The source-tracing protocol table: every protocol of a corpus x the models trained on its training split.

    python benchmarks/source_trace_protocols.py [corpus=data/deepfake] \
        [models.main=[runs/train/source_trace_default/model,<another>]] [models.mono=[...]] \
        [out=runs/bench/source_trace_protocols] [threads=2]

``models`` maps a training split (``main``, ``mono``: a protocol's ``train_from``, or its own name) to exported
tracers trained on it (``experiment=source_trace data.protocol=<split>``; the run's ``model/``; set a split's list
with ``models.main=[...]``, and ``models.mono=[]`` leaves it out). Each protocol is
evaluated with every model of its training split on its test.jsonl, as ``scripts/eval.py`` does it
(speech.source_trace.report.trace_report: report.json and confusion.png in ``out/<run>/<protocol>/``); a report
newer than its model is read back instead of recomputed. The table (protocol x front-end x back-end: macro-F1,
accuracy, one-vs-rest EER, open-set EER, multi-class Cllr, ECE) goes to ``out``/source_trace_protocols.{md,json}.
Targets (issue 20): macro-F1 >= 0.98 mono-lingual, >= 0.95 on languages left out, >= 0.90 on an unseen channel;
unseen-generator EER <= 10%; Cllr < 0.3 and ECE < 5% on test.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` imports benchmarks.*

from common import runner
from common.io import atomic_open
from datamodules.source_trace import SourceTraceDataModule
from speech.source_trace.hub import load_tracer
from speech.source_trace.report import Outputs, trace_report, write_report

log = logging.getLogger("source_trace_protocols")
ORDER = ("main", "unseen_speaker", "unseen_channel", "lolo", "unseen_generator", "mono", "cross_lingual")
TARGETS = {"mono": ("macro_f1", ">=", 0.98), "cross_lingual": ("macro_f1", ">=", 0.95),
           "lolo": ("macro_f1", ">=", 0.95), "unseen_channel": ("macro_f1", ">=", 0.90),
           "unseen_generator": ("open_eer", "<=", 0.10)}
"""Protocol -> (metric, comparison, value) of issue 20; every test split also targets Cllr < 0.3 and ECE < 0.05."""
COLUMNS = (("macro_f1", "macro-F1"), ("acc", "accuracy"), ("eer", "EER 1-vs-rest %"), ("open_eer", "open-set EER %"),
           ("cllr", "Cllr (bits)"), ("ece", "ECE %"), ("unknown_recall", "unknown recall"))
PERCENT = {"eer", "open_eer", "ece"}


@torch.inference_mode()
def evaluate(model_dir: Path, corpus: Path, protocol: str, eval_seconds: float, batch_size: int) -> dict[str, Any]:
    """The report of one exported tracer on one protocol's test split."""
    net, cal, _ = load_tracer(model_dir)
    dm = SourceTraceDataModule(str(corpus), protocol, eval_seconds=eval_seconds, eval_batch_size=batch_size,
                               num_workers=0)
    dm.set_classes(net.cfg.sources, net.cfg.families)
    parts = []
    for batch in dm.test_dataloader():
        if batch is None:
            continue
        out = net(batch["wave"], batch["wave_lens"])
        parts.append(Outputs(out.source_logits.float(), out.family_logits.float(), out.embedding.float(),
                             batch["source"], batch["family"], batch["meta"]))
    return trace_report(Outputs.cat(parts), cal, net.cfg.sources, net.cfg.families)[1]


def run_name(model_dir: Path) -> str:
    """runs/train/source_trace_default/model -> source_trace_default."""
    return model_dir.parent.name if model_dir.name == "model" else model_dir.name


def report_for(model_dir: Path, corpus: Path, protocol: str, out: Path, cfg: DictConfig) -> dict[str, Any]:
    """A report.json newer than the model's weights, or a fresh evaluation written beside its confusion.png."""
    where = out / run_name(model_dir) / protocol
    path = where / "report.json"
    weights = model_dir / "model.safetensors"
    if path.is_file() and weights.is_file() and path.stat().st_mtime > weights.stat().st_mtime:
        log.info("%s: reading %s", protocol, path)
        return dict(json.loads(path.read_text(encoding="utf-8")))
    log.info("%s: evaluating %s", protocol, model_dir)
    report = evaluate(model_dir, corpus, protocol, float(cfg.eval_seconds), int(cfg.batch_size))
    write_report(report, where)
    return report


def row(protocol: str, info: dict[str, Any], model_dir: Path, report: dict[str, Any]) -> dict[str, Any]:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    m = report["metrics"]
    target = TARGETS.get(protocol)
    met = None
    if target and target[0] in m:
        met = m[target[0]] >= target[2] if target[1] == ">=" else m[target[0]] <= target[2]
    return {"protocol": protocol, "trained_on": info.get("train_from") or protocol, "model": str(model_dir),
            "frontend": config["frontend"]["kind"], "backend": config["backend"]["kind"],
            "held_out": info.get("held_out") or {}, "task": info.get("task", ""), "clips": int(m["clips"]),
            **{k: m.get(k) for k, _ in COLUMNS}, "target": target, "target_met": met,
            "calibration_met": (m.get("cllr", 9.0) < 0.3) and (m.get("ece", 1.0) < 0.05)}


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    def cell(k: str, v: Any) -> str:
        if v is None:
            return "-"
        return f"{100 * v:.1f}" if k in PERCENT else f"{v:.3f}"

    head = ["protocol", "trained on", "front-end", "back-end", "test clips", *(name for _, name in COLUMNS),
            "target"]
    lines = [f"`{command}`", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["target"]
        goal = "-" if not t else f"{t[0]} {t[1]} {t[2]}: {'met' if r['target_met'] else 'missed'}"
        lines.append("| " + " | ".join([r["protocol"], r["trained_on"], r["frontend"], r["backend"], str(r["clips"]),
                                        *(cell(k, r[k]) for k, _ in COLUMNS), goal]) + " |")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict[str, Any]:
    runner.setup_threads(cfg.get("threads"))
    corpus, out = Path(cfg.corpus), Path(cfg.out)
    models = {split: [Path(m) for m in (dirs if isinstance(dirs, list) or OmegaConf.is_list(dirs) else [dirs])]
              for split, dirs in (cfg.models or {}).items()}
    protocols = sorted((p.name for p in (corpus / "protocols").iterdir() if (p / "protocol.json").is_file()),
                       key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)) \
        if (corpus / "protocols").is_dir() else []
    if not protocols:
        raise SystemExit(f"source_trace_protocols: {corpus}/protocols holds no protocol (build the corpus: "
                         "python scripts/make_corpus.py corpus=deepfake)")
    rows = []
    for protocol in protocols:
        info = json.loads((corpus / "protocols" / protocol / "protocol.json").read_text(encoding="utf-8"))
        split = info.get("train_from") or protocol
        for model_dir in models.get(split, []):
            if not (model_dir / "config.json").is_file():
                log.warning("%s: no model at %s (train: python scripts/train.py experiment=source_trace "
                            "data.protocol=%s); skipped", protocol, model_dir, split)
                continue
            rows.append(row(protocol, info, model_dir, report_for(model_dir, corpus, protocol, out, cfg)))
    models_arg = " ".join(f"models.{k}=[{','.join(map(str, v))}]" for k, v in models.items())
    command = f"python benchmarks/source_trace_protocols.py corpus={corpus} {models_arg}"
    result = {"command": command, "corpus": str(corpus), "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "source_trace_protocols.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False, default=float)
    table = markdown(rows, command)
    with atomic_open(out / "source_trace_protocols.md", "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="source_trace_protocols")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "source_trace_protocols", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/source_trace_protocols.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("source_trace_protocols", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

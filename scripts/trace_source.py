"""Trace the source of speech clips: python scripts/trace_source.py model=<dir> input=<folder|manifest|file> \
    output=out.jsonl

Through common.batch_job: one JSON line per clip (predicted source and family, calibrated probabilities, "unknown"
below the model's saved threshold); bad, empty, silent and very short files are reported in
``<output>.failed.jsonl`` and skipped, the rest finish; a re-run skips finished clips. Exit code 3 when some failed.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from common import runner
from common.hub import ModelDirError
from speech.source_trace.infer import trace_files, trace_items
from speech.source_trace.tracer import SourceTracer

log = logging.getLogger("trace_source")


def run(cfg: DictConfig) -> int:
    """Trace ``cfg.input`` into ``cfg.output``; the exit code."""
    runner.setup_threads(cfg.get("threads"))
    try:
        items = trace_items(cfg.input)
        tracer = SourceTracer.from_pretrained(cfg.model, cfg.device, min_seconds=float(cfg.min_seconds),
                                              max_seconds=float(cfg.max_seconds))
    except (FileNotFoundError, ModelDirError) as e:
        raise SystemExit(f"trace_source: {e}") from None
    report = trace_files(tracer, items, cfg.output, int(cfg.batch_size), bool(cfg.progress))
    if report.failed:
        lines = "\n".join(f"  {f['path'] or f['id']}: {f['reason']}" for f in report.failed[:20])
        log.warning("%d file(s) skipped:\n%s", len(report.failed), lines)
    log.info("%s -> %s", report.summary(), cfg.output)
    return report.exit_code


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="trace_source")
def main(cfg: DictConfig) -> None:
    code = run(runner.require(cfg, "trace_source"))
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()

"""Translate sign-language pose files: python scripts/translate_sign.py model=<dir> input=<file|folder|manifest>
    tgt_langs=[eng_Latn,deu_Latn] output=out.jsonl [beam=4] [batch_size=16] [device=cpu]

Keys and defaults: configs/inference/translate_sign.yaml. Writes one JSONL row per clip, ``{"id", "path",
"translations": {lang: sentence}}``, through common.batch_job: a re-run resumes, and unreadable or empty pose files
are listed with the reason in <output>.failed.jsonl and skipped (exit code 3 when there were any).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runner
from common.batch_job import BatchReport
from common.hub import ModelDirError
from vision.sign.infer import read_inputs, translate_files
from vision.sign.translator import SignTranslator

log = logging.getLogger("translate_sign")


def run(cfg: DictConfig) -> BatchReport:
    """Translate every unfinished input of ``cfg.input`` into ``cfg.output``; the job's report."""
    runner.setup_threads(cfg.get("threads"))
    try:
        items = read_inputs(cfg.input)
    except FileNotFoundError as e:
        raise SystemExit(f"input: {e}") from None
    try:
        translator = SignTranslator.from_pretrained(cfg.model, cfg.device)
    except (ModelDirError, FileNotFoundError) as e:
        raise SystemExit(f"model: {e}") from None
    langs = [str(x) for x in ([cfg.tgt_langs] if isinstance(cfg.tgt_langs, str) else cfg.tgt_langs)]
    try:
        report = translate_files(translator, items, cfg.output, langs, cfg.beam, cfg.batch_size, cfg.progress)
    except ValueError as e:
        raise SystemExit(f"tgt_langs: {e}") from None
    print(f"translated into {', '.join(langs)}: {report.summary()} -> {cfg.output}")
    if report.failed:
        lines = "\n".join(f"  {f['id']}: {f['reason']}" for f in report.failed)
        log.warning("%d clip(s) skipped (listed in %s.failed.jsonl):\n%s", len(report.failed), cfg.output, lines)
    return report


def translate(cfg: DictConfig) -> BatchReport:
    """The job's report; exits with code 3 when some clips failed."""
    report = run(cfg)
    if report.failed:
        raise SystemExit(report.exit_code)
    return report


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="translate_sign")
def cli(cfg: DictConfig) -> None:
    translate(runner.require(cfg, "translate_sign"))


def main(argv: list[str]) -> BatchReport:
    """In-process entry (tests): the same run as the command line ``argv`` of ``key=value`` overrides."""
    return runner.compose_and_run("translate_sign", argv, run)


if __name__ == "__main__":
    cli()

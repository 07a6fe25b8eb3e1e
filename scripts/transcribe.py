"""Batch transcription: python scripts/transcribe.py model=<dir|ckpt> input=<folder|manifest|file> output=out.jsonl

The output suffix picks the format (.jsonl, .tsv, .srt, .vtt; or format=); timestamps=word|char adds word
(and character) times. A model directory with a language-ID head (scripts/build_lid.py) detects the
language of inputs without one (lid=true|false to force it on or off): rows get lang, lang_confidence and,
on inputs of 4 s or more, segments [{start, end, lang, confidence}]; the detected language steers decoding.
Languages are written as users write them (de, deu, de-DE, deu_Latn) and resolved against the model's
languages (text/langcodes.py); rows carry the model's code, and a manifest row whose code the model does not
know goes to <output>.failed.jsonl. model= may also be a transformers Wav2Vec2ForCTC or a fairseq2/Omnilingual CTC
directory (speech/asr/foreign.py): it is converted once and cached (cache_dir=, default
~/.cache/polyglot-suite/converted).
Runs on common.batch_job: a re-run skips finished files. Exit code 0 when every file was transcribed, 3 when
some were skipped (listed in <output>.failed.jsonl).
"""

from __future__ import annotations

import dataclasses
import logging
import sys

import hydra
from omegaconf import DictConfig

from common import runner
from speech.asr.batch import collect_inputs, transcribe_to_file
from speech.asr.formats import SubtitleConfig
from speech.asr.infer import load_transcriber
from text.langcodes import LanguageError, resolve_or_none

log = logging.getLogger("transcribe")


def run(cfg: DictConfig) -> int:
    """Transcribe ``cfg.input`` into ``cfg.output``; the exit code (0, or 3 when some files were skipped)."""
    runner.setup_threads(cfg.get("threads"))
    items = collect_inputs(cfg.input)  # before the model loads: a bad manifest fails fast
    options = {"decoder": cfg.decoder, "chunk_seconds": cfg.chunk_seconds, "overlap_seconds": cfg.overlap_seconds,
               "min_pause_seconds": cfg.min_pause_seconds}
    if cfg.get("precision", "fp32") != "fp32":
        options["precision"] = cfg.precision
    if cfg.get("context") is not None:
        options["context"] = cfg.context
    if cfg.get("lid") is not None:
        options |= {"lid": bool(cfg.lid), "lid_min_confidence": cfg.lid_min_confidence}
    if cfg.get("cache_dir") is not None:
        options["cache_dir"] = cfg.cache_dir
    transcriber = load_transcriber(cfg.model, device=cfg.device, **options)
    try:  # one language for every input: a code the model does not know stops the run before it starts
        lang = resolve_or_none(cfg.get("lang"), getattr(transcriber, "languages", None))
    except LanguageError as e:
        raise SystemExit(f"error: lang={cfg.lang}: {e}") from None
    if lang is not None:
        items = [dataclasses.replace(it, lang=lang) for it in items]
    report = transcribe_to_file(transcriber, items, cfg.output, cfg.max_batch_seconds, cfg.num_workers, cfg.progress,
                                cfg.lang_alphabet, cfg.timestamps, cfg.get("format"),
                                SubtitleConfig(**cfg.subtitles), cfg.get("lid"))
    if report.failed:  # the engine has logged the summary (done, already finished, failed, time)
        lines = "\n".join(f"  {f['audio']}: {f['reason']}" for f in report.failed)
        log.warning("%d file(s) skipped (listed in %s.failed.jsonl):\n%s", len(report.failed), cfg.output, lines)
    return report.exit_code


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="transcribe")
def main(cfg: DictConfig) -> None:
    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()

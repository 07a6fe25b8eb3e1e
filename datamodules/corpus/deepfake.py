"""Multilingual deepfake corpus for source tracing: python scripts/make_corpus.py corpus=deepfake

Renders clips of many real generators (espeak-ng, festival and flite voices, WORLD and Griffin-Lim resynthesis, the
suite's TTS where its bundles exist, and optionally a user's real speech as ``bonafide``) in several languages and
channels, and writes under ``out_dir``: ``clips/<source>/<lang>/<id>.wav`` (16 kHz mono), ``all.jsonl`` (one row a
clip: id, audio, source, family, lang, speaker, channel, text, duration), ``protocols/<name>/`` (see
deepfake_protocols.py), ``failed.jsonl`` and ``corpus.json`` (counts, sources left out and why, failures, and the
shortcut check). Deterministic for a seed; a re-run keeps finished clips and renders the rest.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.deepfake_audio import CUT_SEARCH, shortcut_report
from datamodules.corpus.deepfake_config import DeepfakeCorpusConfig
from datamodules.corpus.deepfake_plan import Clip, clips_per_lang, plan_source, read_bonafide, text_pools, voices
from datamodules.corpus.deepfake_protocols import _public, write_protocols
from datamodules.corpus.deepfake_render import Failed, render
from datamodules.corpus.deepfake_sources import SOURCES, missing_tool
from datamodules.corpus.deepfake_tts import bundle_langs, render_tts

log = logging.getLogger(__name__)


def _check(cfg: DeepfakeCorpusConfig) -> None:
    unknown = [s for s in [*cfg.sources, *cfg.heldout_sources] if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown sources {unknown}; known: {', '.join(SOURCES)}")
    lo, hi = cfg.duration
    if not 0.5 <= lo <= hi:
        raise ValueError(f"duration must be [min, max] seconds with 0.5 <= min <= max, got {list(cfg.duration)}")
    if cfg.mono_lang not in cfg.langs or cfg.mono_lang in cfg.heldout_langs:
        raise ValueError(f"mono_lang {cfg.mono_lang} must be one of langs and not held out")


def available_sources(cfg: DeepfakeCorpusConfig) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each runnable source's languages, and each source left out with the reason."""
    usable: dict[str, list[str]] = {}
    left_out: dict[str, str] = {}
    for source in cfg.sources:
        if SOURCES[source].engine == "suite_tts":
            bundle = cfg.tts_bundles.get(source)
            try:
                if not bundle:
                    raise ValueError(f"no bundle given (corpus.tts_bundles.{source}=<dir>)")
                langs = [lang for lang in cfg.langs if lang in bundle_langs(bundle)]
            except ValueError as e:
                left_out[source] = str(e)
                continue
        else:
            reason = missing_tool(source)
            if reason:
                left_out[source] = reason
                continue
            langs = [lang for lang in cfg.langs if voices(source, lang)]
        if langs:
            usable[source] = langs
        else:
            left_out[source] = f"speaks none of {cfg.langs} here (no voice installed for them)"
    for source, reason in left_out.items():
        log.warning("source %s left out: %s", source, reason)
    return usable, left_out


def plan(cfg: DeepfakeCorpusConfig) -> tuple[list[Clip], dict[str, str], dict[str, dict[str, list[str]]]]:
    """Every clip, the sources left out (and why), and each language's text pools."""
    _check(cfg)
    usable, left_out = available_sources(cfg)
    bonafide = read_bonafide(cfg)
    per_lang = {source: clips_per_lang(cfg, source, len(langs)) for source, langs in usable.items()}
    pools = {lang: text_pools(cfg, lang, sum(per_lang.values())) for lang in cfg.langs}
    clips: list[Clip] = []
    for source, langs in usable.items():
        for lang in langs:
            if source in cfg.heldout_sources and lang in cfg.heldout_langs:
                continue  # unknown in an unknown language: no protocol tests it
            clips += plan_source(cfg, source, lang, pools[lang], per_lang[source])
    for lang, rows in bonafide.items():
        clips += plan_source(cfg, "bonafide", lang, pools.get(lang, {}), len(rows), rows)
    if not clips:
        raise RuntimeError(f"nothing to render: no source can speak {cfg.langs} ({left_out})")
    return clips, left_out, pools


@CORPUS_BUILDERS.register("deepfake")
def build_deepfake_corpus(cfg: DeepfakeCorpusConfig) -> dict[str, Any]:
    """Render every clip, write all.jsonl, the protocols and corpus.json; returns the statistics."""
    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    clips, left_out, pools = plan(cfg)
    failed: list[Failed] = []
    for source in [s for s in SOURCES if SOURCES[s].engine == "suite_tts" and any(c.source == s for c in clips)]:
        mine = [c for c in clips if c.source == source and not (root / c.audio).exists()]  # a re-run skips them
        if not mine:
            continue
        prompts = {lang: pools[lang]["train"][0] for lang in {c.lang for c in mine}}
        try:
            raw = render_tts(mine, cfg.tts_bundles[source], prompts, root, cfg.tts_nfe, max(1, cfg.workers))
        except (RuntimeError, OSError) as e:  # its clips fail one by one below, the other sources go on
            log.warning("%s", e)
            raw = {}
        for c in mine:
            c.raw = raw.get(c.id, "")
    results: list[tuple[Clip, Any]] = []
    with ProcessPoolExecutor(max(1, cfg.workers), initializer=_one_thread) as pool:
        futures = [(c, pool.submit(render, c, str(root), cfg.duration[0] - CUT_SEARCH)) for c in clips]
        for c, fut in tqdm(futures, desc="rendering", unit="clip"):
            results.append((c, fut.result()))
    rows, cues = [], []
    for c, res in results:
        if isinstance(res, Failed):
            failed.append(res)
            continue
        row, measured = res
        rows.append({**row, "role": c.role, "split": c.split})
        cues.append({**rows[-1], **measured})
    for bad in failed[:20]:
        log.warning("skipped %s", bad.reason)
    write_jsonl(root / "all.jsonl", [_public(r) for r in rows])
    write_jsonl(root / "failed.jsonl", [asdict(f) for f in failed])
    summary = write_protocols(root, rows, cfg, left_out)
    train_cues = [r for r in cues if r["role"] == "main" and r["split"] == "train"]
    test_cues = [r for r in cues if r["role"] == "main" and r["split"] == "test"]
    stats: dict[str, Any] = {
        "config": asdict(cfg), "splits": summary, "clips": len(rows), "hours": round(sum(r["duration"] for r in rows)
                                                                                     / 3600, 3),
        "by_source": _counts(rows, "source"), "by_family": _counts(rows, "family"), "by_lang": _counts(rows, "lang"),
        "by_channel": _counts(rows, "channel"), "sources_left_out": left_out,
        "failed": {"count": len(failed), "by_source": _counts([asdict(f) for f in failed], "source")},
        "shortcuts": shortcut_report(train_cues, test_cues),
    }
    with atomic_open(root / "corpus.json", "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    if failed:
        log.warning("%d clip(s) failed and were skipped (all in %s)", len(failed), root / "failed.jsonl")
    return stats


def _one_thread() -> None:
    # Two workers on two cores: torch (Griffin-Lim) and numpy must not each start a thread per core.
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))

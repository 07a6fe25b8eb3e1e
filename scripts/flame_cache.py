"""FLAME embedding cache: python scripts/flame_cache.py model=<LM dir> input=<captions.jsonl|folder> output=<dir>
    [facets=short|long|single] [langs=[eng_Latn,...]] [kinds=[short,long]] [max_caption_tokens=128] [dtype=float32]
    [store_dtype=float16] [shard_size=4096] [batch_size=16] [device=auto] [overwrite=false]

Keys and defaults: configs/inference/flame_cache.yaml. Encodes every caption of the input with a frozen causal LM
and FLAME's facet prompts (vision.flame.facets, one decoupled forward pass per caption) into a sharded,
memory-mapped cache that training reads with no LLM loaded (vision.flame.cache.EmbeddingCache). Runs on
common.batch_job: a re-run skips finished shards and rows; bad input lines and captions go to
<output>/failed.jsonl, exit code 3 when there were any. A cache made with another LLM or other prompts is refused
(overwrite=true rebuilds it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runner
from vision.flame.cache import BuildReport, StaleCacheError, build_cache, cache_manifest, llm_fingerprint, read_captions
from vision.flame.facets import FacetEncoder, FacetPrompts, facet_set

log = logging.getLogger("flame_cache")


def prompt_sets(cfg: DictConfig) -> dict[str, FacetPrompts]:
    """The prompt set of each caption kind: its namesake set, or ``cfg.facets`` for all."""
    try:
        return {kind: facet_set(cfg.facets or kind) for kind in cfg.kinds}
    except KeyError as e:
        raise SystemExit(f"facets: {e.args[0]}") from None


def run(cfg: DictConfig) -> BuildReport:
    """Build or finish the cache at ``cfg.output``; the report says what was encoded, reused and skipped."""
    runner.setup_threads(cfg.get("threads"))
    kinds, langs = list(cfg.kinds), list(cfg.langs) if cfg.langs else None
    prompts = prompt_sets(cfg)
    try:
        captions = read_captions(cfg.input, kinds, langs)
        llm = llm_fingerprint(cfg.model)
    except FileNotFoundError as e:
        raise SystemExit(f"{e}") from None
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    manifest = cache_manifest(llm, prompts, cfg.max_caption_tokens, cfg.normalize, cfg.dtype, cfg.store_dtype,
                              cfg.shard_size, llm_path=str(Path(cfg.model).resolve()))
    encoder = FacetEncoder(cfg.model, prompts[kinds[0]], cfg.max_caption_tokens, cfg.dtype, device, cfg.normalize)

    def encode(kind: str, texts: list[str]) -> torch.Tensor:
        if encoder.prompts is not prompts[kind]:
            encoder.set_prompts(prompts[kind])
        return encoder(texts)  # [B, K, D]

    try:
        report = build_cache(cfg.output, captions, encode, manifest, batch_size=cfg.batch_size,
                             progress=cfg.progress, overwrite=cfg.overwrite)
    except StaleCacheError as e:
        raise SystemExit(f"output: {e}") from None
    counts = ", ".join(f"{k}: {len(v)}" for k, v in captions.items.items())
    print(f"{cfg.output}: {captions.rows} rows ({counts} captions): {report.summary()}")
    if report.failed:
        lines = "\n".join(f"  {f['id']}: {f['reason']}" for f in report.failed[:20])
        log.warning("%d input(s) skipped (listed in %s/failed.jsonl):\n%s", len(report.failed), cfg.output, lines)
    return report


def build(cfg: DictConfig) -> BuildReport:
    """The build's report; exits with code 3 when some inputs failed."""
    report = run(cfg)
    if report.failed:
        raise SystemExit(report.exit_code)
    return report


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="flame_cache")
def cli(cfg: DictConfig) -> None:
    build(runner.require(cfg, "flame_cache"))


def main(argv: list[str]) -> BuildReport:
    """In-process entry (tests, notebooks): the same run as the command line ``argv`` of ``key=value`` overrides."""
    return runner.compose_and_run("flame_cache", argv, build)


if __name__ == "__main__":
    cli()

"""A tiny FLAME text side for tests: a random tiny Llama and its facet-embedding cache of a tiny vision corpus."""

from __future__ import annotations

from pathlib import Path

from tests.flame_llm import write_tiny_llm
from tests.helpers import load_script


def write_tiny_flame_cache(out: Path, corpus: Path, llm: Path | None = None) -> Path:
    """``<out>/cache``: short (3 facets) and long (7 facets) captions of every split of ``corpus`` in every
    language, encoded by ``llm`` (a tiny random Llama in ``<out>/llm`` when not given)."""
    llm = llm or write_tiny_llm(out / "llm")
    load_script("flame_cache").main([f"model={llm}", f"input={corpus}/folder", f"output={out}/cache",
                                     "progress=false", "batch_size=32", "device=cpu"])
    return out / "cache"

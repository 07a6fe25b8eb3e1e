"""vision.flame.cache + scripts/flame_cache.py: build, reopen memory-mapped, resume, refuse stale caches."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from tests.flame_llm import write_tiny_llm
from tests.helpers import load_script
from vision.flame.cache import (
    EmbeddingCache,
    StaleCacheError,
    build_cache,
    cache_manifest,
    llm_fingerprint,
    read_captions,
)
from vision.flame.facets import FacetEncoder, facet_set

ROWS: list[dict[str, Any]] = [
    {"id": "r0", "captions": {"eng_Latn": {"short": "a red cube", "long": "a small red cube left of a blue ball"},
                              "deu_Latn": {"short": "ein roter Würfel", "long": "ein kleiner roter Würfel links"}}},
    {"id": "r1", "captions": {"eng_Latn": {"short": "two green cones", "long": "two green cones under a lamp"}}},
    {"id": 2, "captions": {"eng_Latn": {"short": "a striped pyramid", "long": ""},  # empty: one failed caption
                           "deu_Latn": {"short": "eine gestreifte Pyramide"}}},
    {"id": "r3", "captions": {"eng_Latn": {"short": "nothing at all", "long": "an empty grey floor, nothing on it"},
                              "deu_Latn": {"short": "gar nichts", "long": "ein leerer grauer Boden"}}},
]


def write_captions(path: Path) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in ROWS]
    lines.insert(2, '{"id": "broken", "captions": ')  # line 3: bad JSON
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("flame_cache")
    return {"llm": write_tiny_llm(root / "llm"), "other_llm": write_tiny_llm(root / "llm2", seed=1),
            "captions": write_captions(root / "captions.jsonl"), "root": root}


@pytest.fixture(scope="module")
def built(setup: dict[str, Path]) -> Path:
    """A float32 cache built through the command line, 3 vectors a shard; the bad line and caption exit 3."""
    out = setup["root"] / "cache"
    with pytest.raises(SystemExit) as info:
        load_script("flame_cache").main([f"model={setup['llm']}", f"input={setup['captions']}", f"output={out}",
                                         "store_dtype=float32", "shard_size=3", "batch_size=2", "progress=false"])
    assert info.value.code == 3
    return out


def expect(llm: Path, **kw: Any) -> dict[str, Any]:
    """What a training run asks of the cache, computed from files only (no LLM loaded)."""
    m = cache_manifest(llm_fingerprint(llm), {"short": facet_set("short"), "long": facet_set("long")}, 128, **kw)
    return {k: m[k] for k in ("llm", "prompts", "max_caption_tokens", "normalize")}


def test_lookup_equals_direct_encoding(built: Path, setup: dict[str, Path]) -> None:
    cache = EmbeddingCache.open(built, expect=expect(setup["llm"]))
    assert cache.kinds == ["short", "long"] and cache.langs("short") == ["deu_Latn", "eng_Latn"]
    assert cache.facet_names("long") == facet_set("long").names
    assert len(list((built / "short").glob("shard-*.npy"))) == 3  # 7 short captions, 3 a shard
    enc = FacetEncoder(setup["llm"], "short", max_caption_tokens=128)
    for kind, lang, ids in [("short", "eng_Latn", ["r3", "2", "r0", "r1"]), ("short", "deu_Latn", ["2", "r0"]),
                            ("long", "eng_Latn", ["r1", "r3", "r0"]), ("long", "deu_Latn", ["r3", "r0"])]:
        texts = [next(r for r in ROWS if str(r["id"]) == i)["captions"][lang][kind] for i in ids]
        got = cache.lookup(ids, lang, kind)  # [B, K, D]
        assert got.dtype == torch.float32 and got.shape == (len(ids), len(facet_set(kind)), enc.dim)
        torch.testing.assert_close(got, enc.set_prompts(facet_set(kind)).encode(texts), atol=1e-5, rtol=1e-5)
    assert all(isinstance(a, np.memmap) for a in cache._arrays.values())  # read from disk, not loaded
    again = pickle.loads(pickle.dumps(cache))  # data-loader workers get a copy that maps the shards itself
    torch.testing.assert_close(again.lookup(["r0"], "eng_Latn", "long"), cache.lookup(["r0"], "eng_Latn", "long"))
    with pytest.raises(KeyError, match="no eng_Latn long caption of row '2'"):
        cache.lookup(["2"], "eng_Latn", "long")


def test_bad_line_and_bad_caption_are_listed_and_skipped(built: Path, setup: dict[str, Path]) -> None:
    failed = [json.loads(line) for line in (built / "failed.jsonl").read_text(encoding="utf-8").splitlines()]
    reasons = sorted(f["reason"] for f in failed)
    assert len(failed) == 2, failed
    assert reasons[0].startswith(f"{setup['captions']}:3: invalid JSON")
    assert reasons[1] == f"{setup['captions']}:4: eng_Latn long caption is not a non-empty string"
    cache = EmbeddingCache.open(built)
    assert sorted(cache.row_ids("long", "eng_Latn")) == ["r0", "r1", "r3"]


def test_stale_cache_is_refused_with_what_differs(built: Path, setup: dict[str, Path]) -> None:
    with pytest.raises(StaleCacheError, match="another LLM"):
        EmbeddingCache.open(built, expect=expect(setup["other_llm"]))
    other = {**expect(setup["llm"]), "prompts": {"long": facet_set("short").identity()}}
    with pytest.raises(StaleCacheError, match=r"other facet prompts \(prompts\.long\.prefix: cache has 'Detailed"):
        EmbeddingCache.open(built, expect=other)
    with pytest.raises(StaleCacheError, match=r"another max_caption_tokens \(cache has 128, expected 64\)"):
        EmbeddingCache.open(built, expect={"max_caption_tokens": 64})
    with pytest.raises(StaleCacheError, match="holds no 'tiny' captions"):
        EmbeddingCache.open(built, expect={"prompts": {"tiny": facet_set("short").identity()}})
    # The command refuses to extend it with another model, and rebuilds it when told to.
    script = load_script("flame_cache")
    args = [f"input={setup['captions']}", f"output={built}", "store_dtype=float32", "shard_size=3", "progress=false"]
    with pytest.raises(SystemExit, match=r"output: stale cache .* another LLM"):
        script.main([f"model={setup['other_llm']}", *args])
    with pytest.raises(SystemExit, match=r"output: stale cache .* other facet prompts"):
        script.main([f"model={setup['llm']}", "facets=single", *args])
    EmbeddingCache.open(built, expect=expect(setup["llm"]))  # still intact


def test_resume_encodes_only_what_is_missing(setup: dict[str, Path], tmp_path: Path) -> None:
    enc = FacetEncoder(setup["llm"], "short", max_caption_tokens=128)
    prompts = {"short": facet_set("short")}
    manifest = cache_manifest(llm_fingerprint(setup["llm"]), prompts, 128, store_dtype="float32", shard_size=3)
    captions = read_captions(setup["captions"], ["short"])
    seen: list[str] = []

    def encode(kind: str, texts: list[str], stop_after: int | None = None) -> Tensor:
        if stop_after is not None and len(seen) >= stop_after:
            raise KeyboardInterrupt  # killed mid-build
        seen.extend(texts)
        return enc.set_prompts(prompts[kind])(texts)

    with pytest.raises(KeyboardInterrupt):
        build_cache(tmp_path, captions, lambda k, t: encode(k, t, stop_after=4), manifest, batch_size=1,
                    progress=False)
    assert len(seen) == 4  # one full shard of 3, one caption of the next
    with pytest.raises(FileNotFoundError, match="incomplete embedding cache"):
        EmbeddingCache.open(tmp_path)
    first = list(seen)
    report = build_cache(tmp_path, captions, encode, manifest, batch_size=1, progress=False)
    assert report.skipped_existing == 4 and report.done == 3 and len(report.failed) == 1  # the bad JSON line
    assert sorted(seen[4:]) == sorted(set(it.payload for it in captions.items["short"]) - set(first))
    report = build_cache(tmp_path, captions, encode, manifest, batch_size=1, progress=False)
    assert report.done == 0 and report.skipped_existing == 7 and len(seen) == 7  # finished: nothing to encode
    cache = EmbeddingCache.open(tmp_path)
    ids = cache.row_ids("short", "eng_Latn")
    texts = [next(r for r in ROWS if str(r["id"]) == i)["captions"]["eng_Latn"]["short"] for i in ids]
    torch.testing.assert_close(cache.lookup(ids, "eng_Latn", "short"), enc.encode(texts), atol=1e-5, rtol=1e-5)


def test_float16_store_and_corpus_folder_input(setup: dict[str, Path], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for split, rows in [("train", ROWS[:2]), ("test", ROWS[3:]), (".dev.tmp", ROWS[2:3])]:  # hidden: unfinished
        (corpus / "folder" / split).mkdir(parents=True)
        (corpus / "folder" / split / "captions.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "cache"
    report = load_script("flame_cache").main([f"model={setup['llm']}", f"input={corpus}", f"output={out}",
                                              "kinds=[long]", "langs=[eng_Latn]", "progress=false"])
    assert report.done == 3 and not report.failed
    cache = EmbeddingCache.open(out, expect={"store_dtype": "float16"})
    assert cache.kinds == ["long"] and cache.langs("long") == ["eng_Latn"]
    assert np.load(out / "long" / "shard-00000.npy").dtype == np.float16
    enc = FacetEncoder(setup["llm"], "long", max_caption_tokens=128)
    want = enc.encode([ROWS[3]["captions"]["eng_Latn"]["long"], ROWS[0]["captions"]["eng_Latn"]["long"]])
    torch.testing.assert_close(cache.lookup(["r3", "r0"], "eng_Latn", "long"), want, atol=2e-3, rtol=0)


def test_missing_inputs_are_one_clear_line(setup: dict[str, Path], tmp_path: Path) -> None:
    script = load_script("flame_cache")
    with pytest.raises(SystemExit, match=r"no captions JSONL there \(no captions.jsonl below it\)"):
        script.main([f"model={setup['llm']}", f"input={tmp_path}", f"output={tmp_path / 'c'}"])
    with pytest.raises(SystemExit, match=r"no config\.json there"):
        script.main([f"model={tmp_path}", f"input={setup['captions']}", f"output={tmp_path / 'c'}"])
    with pytest.raises(SystemExit, match=r"facets: .*unknown facet set 'huge'"):
        script.main([f"model={setup['llm']}", f"input={setup['captions']}", f"output={tmp_path / 'c'}", "facets=huge"])
    with pytest.raises(FileNotFoundError, match="not an embedding cache"):
        EmbeddingCache.open(tmp_path)


def test_help_lists_every_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import runpy
    import sys

    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from common.runner import COMMAND_CONFIGS
    from tests.helpers import ROOT

    path = str(ROOT / "scripts" / "flame_cache.py")
    monkeypatch.setattr(sys, "argv", [path, "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(path, run_name="__main__")
    GlobalHydra.instance().clear()
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "python scripts/flame_cache.py" in out.splitlines()[0]
    keys = [str(k) for k in OmegaConf.load(COMMAND_CONFIGS / "flame_cache.yaml") if k not in ("defaults", "hydra")]
    assert all(f"\n{k}:" in out for k in keys)

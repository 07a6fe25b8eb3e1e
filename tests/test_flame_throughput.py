"""benchmarks/flame_throughput.py on a tiny corpus and a tiny random LLM: the online loop encodes what the cache
holds, and one run times all three loops (offline cache, online LLM, open_clip_train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import flame_throughput as bench
from tests.flame_data import write_tiny_flame_cache
from tests.flame_llm import write_tiny_llm
from tests.vision_data import write_tiny_vision_corpus
from vision.flame.cache import EmbeddingCache
from vision.flame.facets import FacetEncoder, FacetPrompts

TINY = ["net.image_size=32", "+net.patch_size=8", "+net.depth=1", "+net.width=32", "+net.heads=2",
        "+net.projector_hidden=32"]


@pytest.fixture(scope="module")
def vision(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("flame_tp")
    corpus = write_tiny_vision_corpus(root / "corpus")
    llm = write_tiny_llm(root / "llm")
    return {"root": root, "corpus": corpus, "llm": llm, "cache": write_tiny_flame_cache(root, corpus, llm)}


def test_the_online_module_encodes_what_the_cache_holds(vision: dict[str, Path]) -> None:
    cache = EmbeddingCache.open(str(vision["cache"]))
    man = cache.manifest
    enc = FacetEncoder(vision["llm"], FacetPrompts.from_dict(man["prompts"]["short"], "short"),
                       int(man["max_caption_tokens"]))
    cfg: Any = bench.runner.compose("flame_throughput", [f"cache={vision['cache']}",
                                                         f"data={vision['corpus']}/folder/dev", *TINY],
                                    bench.runner.BENCHMARK_CONFIGS)
    module = bench.OnlineFlameModule(enc, "short", **bench.module_kwargs(cfg))
    offline = next(iter(bench.datamodule(cfg, cached=True).loader(cfg.data, "val")))
    online = next(iter(bench.datamodule(cfg, cached=False).loader(cfg.data, "val")))
    assert offline["ids"] == online["ids"] and "text_emb" not in online
    got = module._cached(online)
    assert sorted(got) == sorted(offline["text_emb"]) and len(got) > 1
    for lang, by in got.items():
        want = offline["text_emb"][lang]["short"].float()  # stored as float16
        assert by["short"].shape == want.shape
        torch.testing.assert_close(by["short"], want, atol=2e-3, rtol=0)


def test_one_run_times_offline_online_and_open_clip_train(vision: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    forward = FacetEncoder.forward
    monkeypatch.setattr(FacetEncoder, "forward", lambda self, captions: calls.append(len(captions)) or
                        forward(self, captions))
    out = tmp_path / "tp.json"
    # One 16-image shard: 4 batches an epoch, so the 6 offline and open_clip steps run into a second epoch.
    shard = f"{vision['corpus']}/shards/train/shard-000000.tar"
    result = bench.main([f"cache={vision['cache']}", f"data={shard}", *TINY, "batch_size=4",
                         "shuffle_buffer=4", "steps=5", "online_steps=2", "warmup=1", "threads=1",
                         "precision=32-true", f"output={out}"])
    assert json.loads(out.read_text()) == result
    rates = result["steps_per_s"]
    assert set(rates) == {"offline", "online", "open_clip"} and all(v > 0 for v in rates.values())
    assert result["offline_over_online"] == pytest.approx(rates["offline"] / rates["online"])
    # The LLM ran in the online loop only: each caption language of each of its 3 steps, up to 4 captions each.
    langs = EmbeddingCache.open(str(vision["cache"])).langs("short")
    assert len(langs) > 1 and len(calls) == 3 * len(langs) and all(0 < n <= 4 for n in calls)


def test_the_text_space_figures_on_the_tiny_cache(vision: dict[str, Path]) -> None:
    from benchmarks import flame_text_space

    result = flame_text_space.main([f"cache={vision['cache']}", f"captions={vision['corpus']}/folder/test"])
    direct = flame_text_space.main([f"llm={vision['llm']}", f"captions={vision['corpus']}/folder/test", "threads=1"])
    assert direct["langs"].keys() == result["langs"].keys() and direct["rows"] == result["rows"]
    for lang, m in direct["langs"].items():  # the LLM itself gives what its cache holds (float16 there)
        assert m["cos_mean"] == pytest.approx(result["langs"][lang]["cos_mean"], abs=1e-3)
    eng = result["langs"]["eng_Latn"]
    assert eng["xling_r1"] == 1.0  # English against itself
    assert len(result["langs"]) > 1 and result["rows"] > 2
    for m in result["langs"].values():
        assert 0 <= m["xling_r1"] <= 1 and -1 <= m["cos_mean"] <= m["cos_nn"] <= 1
        assert all(0 <= m[f"{p}_{a}"] <= 1 for p in ("nn", "chance") for a in flame_text_space.ATTRIBUTES)


def test_nearest_neighbours_that_share_an_attribute_are_counted() -> None:
    from benchmarks.flame_text_space import space_stats

    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]]), dim=-1)
    objs = [{"colour": "red"}, {"colour": "red"}, {"colour": "blue"}, {"colour": "green"}]
    m = space_stats(q, q, objs)
    assert m["nn_colour"] == 0.5 and m["chance_colour"] == pytest.approx(2 / 12) and m["xling_r1"] == 1.0


def test_centring_takes_the_mean_facet_of_each_language_or_of_all() -> None:
    from benchmarks.flame_text_space import centred

    facets = {"eng_Latn": torch.tensor([[[1.0, 2.0]], [[3.0, 2.0]]]),
              "deu_Latn": torch.tensor([[[5.0, 0.0]], [[5.0, 4.0]]])}
    by_lang = centred(facets, "lang")
    assert all(torch.allclose(f.mean((0, 1)), torch.zeros(2)) for f in by_lang.values())
    assert torch.equal(by_lang["eng_Latn"], torch.tensor([[[-1.0, 0.0]], [[1.0, 0.0]]]))
    together = centred(facets, "all")  # the mean over both languages is (3.5, 2)
    assert torch.equal(together["deu_Latn"], torch.tensor([[[1.5, -2.0]], [[1.5, 2.0]]]))
    assert centred(facets, "none") is facets
    with pytest.raises(ValueError, match="center='mean'"):
        centred(facets, "mean")

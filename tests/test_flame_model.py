"""FLAME's image side and training (vision/flame): tower + projector, the multi-positive loss, overfitting cached
pairs, training with no LLM loaded, the hub round trip, evaluation, and the CLIP baseline; tiny sizes throughout."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from tests.flame_data import write_tiny_flame_cache
from tests.flame_llm import write_tiny_llm
from tests.helpers import compose_cfg, load_script
from tests.vision_data import tiny_image_text_overrides, write_tiny_vision_corpus
from vision.flame.cache import StaleCacheError
from vision.flame.config import FlameConfig, ImageTowerConfig, flame_tiny
from vision.flame.evaluation import CLASSES, class_prompts, retrieval, single_object_labels, transfer
from vision.flame.hub import load_flame, save_pretrained
from vision.flame.model import FlameModel, build_image_tower
from vision.flame.module import FlameModule

TINY: dict[str, Any] = {"image_size": 32, "patch_size": 8, "depth": 1, "width": 32, "heads": 2, "projector_hidden": 32}
FAST = ["logger=csv", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
        "trainer.precision=32-true", "+model.net.width=32", "+model.net.depth=1", "+model.net.heads=2",
        "+model.net.patch_size=8", "model.warmup_steps=2"]


def tiny_flame(dim: int = 16, **kw: Any) -> FlameModel:
    torch.manual_seed(0)
    return FlameModel(flame_tiny(embed_dim=dim, **{**TINY, **kw}))


@pytest.fixture(scope="module")
def vision(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny corpus, a tiny random LLM and the cache of every caption it makes."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("flame")
    corpus = write_tiny_vision_corpus(root / "corpus")
    llm = write_tiny_llm(root / "llm")
    return {"root": root, "corpus": corpus, "llm": llm, "cache": write_tiny_flame_cache(root, corpus, llm)}


def test_tower_and_projector_give_unit_vectors_in_the_llm_width() -> None:
    model = tiny_flame(dim=24).eval()
    out = model.embed_image(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 24)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert isinstance(model.image.projector.net[-1], torch.nn.LayerNorm)  # FLAME's projector ends in a LayerNorm
    assert ImageTowerConfig(name="open_clip:ViT-B-32").library == "open_clip"
    with pytest.raises(ValueError, match="library 'keras'"):
        ImageTowerConfig(library="keras")
    with pytest.raises(ValueError, match="timm only"):
        build_image_tower(ImageTowerConfig(name="open_clip:ViT-B-32", depth=2))
    with pytest.raises(ValueError, match="embed_dim is not set"):
        FlameModel(FlameConfig())


def test_local_tower_weights_load_and_a_file_that_fits_nothing_is_refused(tmp_path: Path) -> None:
    a, b = tiny_flame(), tiny_flame()
    torch.manual_seed(1)
    for p in a.image.tower.parameters():
        p.data.normal_()
    # open_clip checkpoints keep the image tower under "visual."; the loader strips it.
    save_file({f"visual.{k}": v.contiguous() for k, v in a.image.tower.state_dict().items()},
              str(tmp_path / "tower.safetensors"))
    tower, _ = build_image_tower(ImageTowerConfig(**{**{k: v for k, v in TINY.items() if k != "projector_hidden"},
                                                     "pool": "avg", "weights": str(tmp_path / "tower.safetensors")}))
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(tower.eval()(x), a.image.tower.eval()(x), atol=1e-6)
    assert not torch.allclose(b.image.tower.eval()(x), a.image.tower.eval()(x))
    torch.save({"state_dict": {"unrelated.weight": torch.zeros(3)}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad\.pt: no tensor fits the tower"):
        build_image_tower(ImageTowerConfig(name="vit_tiny_patch16_224", image_size=32, weights=str(tmp_path /
                                                                                                  "bad.pt")))


def _module(loss: str = "sigmoid", dim: int = 16) -> FlameModule:
    torch.manual_seed(0)
    return FlameModule(flame_tiny(embed_dim=dim, **TINY), loss=loss, lr=3e-3, warmup_steps=0)


@pytest.mark.parametrize("loss", ["sigmoid", "infonce"])
def test_the_loss_is_lower_when_every_facet_aligns_with_its_image(loss: str) -> None:
    module = _module(loss)
    torch.manual_seed(0)
    img = F.normalize(torch.randn(6, 16), dim=-1)

    def facets(rows: torch.Tensor) -> torch.Tensor:  # [B, 3, D]: each facet near its row
        return F.normalize(rows[:, None] + 0.3 * torch.randn(rows.shape[0], 3, 16), dim=-1)

    aligned = {"eng_Latn": {"short": facets(img)}, "deu_Latn": {"short": facets(img)}}
    shuffled = {lang: {k: v.roll(1, dims=0) for k, v in by.items()} for lang, by in aligned.items()}
    assert module.contrastive_loss(img, aligned) < module.contrastive_loss(img, shuffled)


def test_a_tiny_flame_overfits_cached_pairs_to_recall_1() -> None:
    module = _module()
    torch.manual_seed(0)
    images = torch.randn(8, 3, 32, 32)
    emb = {"eng_Latn": {"short": F.normalize(torch.randn(8, 3, 16), dim=-1)}}
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    first = float(module.contrastive_loss(module.net.image(images), emb))
    for _ in range(150):
        loss = module.contrastive_loss(module.net.image(images), emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 2
    module.eval()
    with torch.no_grad():
        texts = module.query_embeddings({"text_emb": emb})["eng_Latn"]["short"]
        metrics = retrieval(module.image_embeddings(images), texts)
    assert metrics["t2i_r1"] == 1.0 and metrics["i2t_r1"] == 1.0


def _no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building any LLM or facet encoder fails the test."""
    import transformers

    from vision.flame import facets

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an LLM was loaded during FLAME training")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(facets.FacetEncoder, "__init__", refuse)


@pytest.fixture(scope="module")
def trained(vision: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """experiment=flame for a few steps on the tiny corpus and cache, exported (no LLM may load)."""
    out = tmp_path_factory.mktemp("flame_run")
    with pytest.MonkeyPatch.context() as mp:
        _no_llm(mp)
        cfg = compose_cfg("train", ["experiment=flame", *tiny_image_text_overrides(vision["corpus"]),
                                    f"data.text_embeddings={vision['cache']}", *FAST, "trainer.max_steps=4",
                                    "trainer.val_check_interval=2", "trainer.max_time=null"], out)
        metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and 0 <= metrics["val/r1"] <= 1
    assert {"val/eng_Latn/t2i_r1", "val/hin_Deva/t2i_r1", "val/i2t_r1"} <= set(metrics)
    return out


def test_training_reads_the_cache_exports_and_round_trips_through_the_hub(trained: Path, vision: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    config = json.loads((trained / "model" / "config.json").read_text())
    assert config["model_type"] == "flame" and config["embed_dim"] == 32  # the tiny LLM's width, from the cache
    assert Path(config["llm_dir"]) == vision["llm"].resolve() and set(config["prompts"]) == {"short", "long"}
    model = load_flame(trained / "model")
    x = torch.randn(2, 3, 32, 32)
    again = load_flame(save_pretrained(model, tmp_path / "copy"))
    assert torch.equal(model.embed_image(x), again.embed_image(x))
    text = model.embed_text(["A big red star is on the left.", "Two small blue circles are at the top."])
    assert text.shape == (2, 32) and torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_evaluate_reports_retrieval_long_captions_zero_shot_and_transfer(trained: Path, vision: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    cfg = compose_cfg("eval", ["experiment=flame", *tiny_image_text_overrides(vision["corpus"]),
                               f"data.text_embeddings={vision['cache']}", "trainer.accelerator=cpu",
                               f"ckpt_path={trained / 'model'}"], tmp_path)
    metrics = load_script("eval").evaluate(cfg)
    for split in ("test", "test_seen"):
        for lang in ("eng_Latn", "deu_Latn", "hin_Deva"):
            for key in ("short/t2i_r1", "short/t2i_r10", "short/i2t_r5", "long/t2i_r1"):
                assert 0 <= metrics[f"{split}/{lang}/{key}"] <= 1
        assert f"{split}/transfer/rus_Cyrl" in metrics
    assert 0 <= metrics["test/zeroshot/eng_Latn/acc"] <= metrics["test/zeroshot/eng_Latn/shape_acc"] + 1e-9
    saved = json.loads((tmp_path / "retrieval.json").read_text())
    assert saved["metrics"] == metrics

    other = write_tiny_flame_cache(tmp_path / "other", vision["corpus"], write_tiny_llm(tmp_path / "llm2", seed=1))
    stale = compose_cfg("eval", ["experiment=flame", *tiny_image_text_overrides(vision["corpus"]),
                                 f"data.text_embeddings={other}", f"ckpt_path={trained / 'model'}"], tmp_path / "s")
    with pytest.raises(StaleCacheError, match="another LLM"):
        load_script("eval").evaluate(stale)


def test_clip_baseline_trains_its_text_tower_exports_and_evaluates(vision: dict[str, Path], tmp_path: Path) -> None:
    overrides = ["experiment=clip_baseline", *tiny_image_text_overrides(vision["corpus"]), *FAST,
                 "+model.net.text_d_model=32", "+model.net.text_num_layers=1", "+model.net.text_num_heads=2",
                 "+model.net.text_ffn_dim=64", "+model.net.text_embed_dim=16", "model.vocab_size=300"]
    cfg = compose_cfg("train", [*overrides, "trainer.max_steps=3", "trainer.val_check_interval=3",
                                "trainer.max_time=null"], tmp_path / "train")
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and 0 <= metrics["val/r1"] <= 1
    assert (tmp_path / "train" / "model" / "tokenizer.model").is_file()
    ev = compose_cfg("eval", ["experiment=clip_baseline", *tiny_image_text_overrides(vision["corpus"]),
                              "trainer.accelerator=cpu", f"ckpt_path={tmp_path / 'train' / 'model'}"],
                     tmp_path / "eval")
    got = load_script("eval").evaluate(ev)
    assert 0 <= got["test/spa_Latn/long/t2i_r1"] <= 1 and "test/zeroshot/fra_Latn/acc" in got


def test_zero_shot_prompts_and_labels_and_the_transfer_figure() -> None:
    prompts = class_prompts("eng_Latn")
    assert len(prompts) == len(CLASSES) == 48 and prompts[CLASSES.index(("red", "star"))] == ["a photo of a red star.",
                                                                                            "a red star"]
    assert class_prompts("deu_Latn")[CLASSES.index(("red", "star"))] == ["ein roter Stern"]
    one = {"objects": [{"shape": "star", "colour": "red", "count": 3}]}
    two = {"objects": [{"shape": "star", "colour": "red", "count": 1}, {"shape": "cross", "colour": "blue",
                                                                        "count": 1}]}
    assert single_object_labels([two, one, None]) == ([1], [CLASSES.index(("red", "star"))])
    fig = transfer({"eng_Latn/short/t2i_r1": 0.8, "deu_Latn/short/t2i_r1": 0.6, "deu_Latn/long/t2i_r1": 0.1})
    assert fig == {"transfer/deu_Latn": pytest.approx(0.75)}


def test_an_exported_flame_indexes_images_and_answers_text_queries(trained: Path, vision: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    importlib.import_module("vision.flame.plugins")  # the entry point does it once the suite is (re)installed
    images = Path(shutil.copytree(vision["corpus"] / "folder" / "test" / "images", tmp_path / "images"))
    (images / "notes.txt").write_text("A big red star is on the left.\n", encoding="utf-8")  # a text file: embedded too
    (images / "broken.png").write_bytes(b"not a png")
    script = load_script("retrieve")
    idx = tmp_path / "idx"
    assert script.main(["index", f"model={trained / 'model'}", f"input={images}", f"index={idx}",
                        "progress=false"]) == 3  # the broken image is reported and skipped
    assert "broken.png" in (idx / "failed.jsonl").read_text()
    rows = script.main(["search", f"index={idx}", "query=Three small blue circles are at the top.", "top_k=3"])
    assert len(rows) == 3 and all(r["rank"] in (1, 2, 3) for r in rows)
    manifest = json.loads((idx / "manifest.json").read_text())
    assert manifest["model"]["embedders"] == {"image": "flame_image", "text": "flame_text"}

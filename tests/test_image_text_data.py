"""ImageTextDataModule: both forms give the same batches, bad inputs are skipped by name, languages and cache hooks."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from datamodules.corpus.vision import write_tar
from datamodules.corpus.vision_captions import LANGS
from datamodules.image_text import ImageTextDataModule, ImageTransform, Sampler, ShardDataset
from tests.vision_data import write_tiny_vision_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_vision_corpus(tmp_path_factory.mktemp("vision"))


def _batches(dm: ImageTextDataModule, stage: str = "val") -> list[dict[str, Any]]:
    loader = dm.train_dataloader() if stage == "train" else dm.val_dataloader()
    return [b for b in loader if b is not None]


def _dm(path: Path, **kw: Any) -> ImageTextDataModule:
    return ImageTextDataModule(train_path=str(path), val_path=str(path), image_size=24, batch_size=5, **kw)


@pytest.mark.parametrize("form", ["shards", "folder"])
def test_batches_from_either_form(corpus: Path, form: str) -> None:
    batches = _batches(_dm(corpus / form / "dev", caption_kind="both"))
    assert sum(len(b["ids"]) for b in batches) == 12
    b = batches[0]
    assert b["image"].shape == (5, 3, 24, 24) and b["image"].dtype == torch.float32
    assert set(b["captions"]) == set(LANGS) and len(b["attributes"]) == 5
    for lang in LANGS:
        assert set(b["captions"][lang]) == {"short", "long"} and len(b["captions"][lang]["long"]) == 5
    train = _batches(_dm(corpus / form / "train"), "train")
    assert sorted(i for b in train for i in b["ids"]) == [f"train-{i:06d}" for i in range(40)]


def test_both_forms_give_the_same_evaluation_batches(corpus: Path) -> None:
    a = {i: (img, c) for b in _batches(_dm(corpus / "shards" / "test"))
         for i, img, c in zip(b["ids"], b["image"], b["captions"]["hin_Deva"]["short"])}
    b2 = {i: (img, c) for b in _batches(_dm(corpus / "folder" / "test"))
          for i, img, c in zip(b["ids"], b["image"], b["captions"]["hin_Deva"]["short"])}
    assert a.keys() == b2.keys()
    for k in a:
        assert torch.equal(a[k][0], b2[k][0]) and a[k][1] == b2[k][1]


def test_english_only_training(corpus: Path) -> None:
    dm = _dm(corpus / "shards" / "train", train_langs=["eng_Latn"])
    for b in _batches(dm, "train"):
        assert list(b["captions"]) == ["eng_Latn"] and list(b["captions"]["eng_Latn"]) == ["short"]
    assert set(_batches(dm)[0]["captions"]) == set(LANGS)  # evaluation keeps every language


def test_corrupt_image_and_broken_line_are_skipped_by_name(corpus: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "dev"
    shutil.copytree(corpus / "folder" / "dev", folder)
    (folder / "images" / "dev-000003.png").write_bytes(b"not a png")
    with open(folder / "captions.jsonl", "a", encoding="utf-8") as f:
        f.write('{"id": "broken", "image": \n')
    log = tmp_path / "bad.jsonl"
    with caplog.at_level(logging.WARNING, logger="datamodules.image_text"):
        ids = [i for b in _batches(_dm(folder, bad_input_log=str(log))) for i in b["ids"]]
    assert len(ids) == 11 and "dev-000003" not in ids
    text = caplog.text
    assert "dev-000003.png: unreadable image" in text and "captions.jsonl:13: invalid JSON" in text
    assert len(log.read_text().splitlines()) == 2

    # The same in a shard: a sample whose png is broken, beside a good one.
    rows = [json.loads(line) for line in (corpus / "folder" / "dev" / "captions.jsonl").read_text().splitlines()]
    good = (corpus / "folder" / "dev" / rows[0]["image"]).read_bytes()
    members = [m for r, png in ((rows[0], good), (rows[1], b"\x89PNG broken"))
               for m in ((f"{r['id']}.png", png), (f"{r['id']}.json", json.dumps(r).encode()))]
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "shard-000000.tar", members)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datamodules.image_text"):
        ids = [i for b in _batches(_dm(shards)) for i in b["ids"]]
    assert ids == [rows[0]["id"]] and f"shard-000000.tar:{rows[1]['id']}: unreadable image" in caplog.text


class _Cache:
    """A stand-in for the offline embedding cache: 3 facets of 8 dims, the row number in every entry."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def lookup(self, row_ids: list[str], lang: str, kind: str) -> torch.Tensor:
        self.calls.append((lang, kind))
        return torch.tensor([float(r.split("-")[1]) for r in row_ids]).view(-1, 1, 1).expand(-1, 3, 8).clone()


def test_text_embeddings_replace_captions(corpus: Path) -> None:
    cache = _Cache()
    opened: list[str] = []

    def load_cache(path: str) -> _Cache:
        opened.append(path)
        return cache

    dm = _dm(corpus / "shards" / "train", train_langs=["eng_Latn"], text_embeddings="/some/cache",
             load_cache=load_cache)
    b = _batches(dm, "train")[0]
    assert "captions" not in b and opened == ["/some/cache"]
    emb = b["text_emb"]["eng_Latn"]["short"]
    assert emb.shape == (5, 3, 8) and emb[:, 0, 0].tolist() == [float(i.split("-")[1]) for i in b["ids"]]
    assert set(cache.calls) == {("eng_Latn", "short")}
    with pytest.raises(ValueError, match="load_cache"):
        _dm(corpus / "shards" / "train", text_embeddings="/some/cache")


def test_shards_split_over_ranks(corpus: Path) -> None:
    urls = sorted(str(p) for p in (corpus / "shards" / "train").glob("*.tar"))
    assert len(urls) == 3
    make = Sampler(ImageTransform(16, (0.5,) * 3, (0.5,) * 3, train=True), ["eng_Latn"], ["short"], None, "train")
    seen = [{s["id"] for s in ShardDataset(urls, make, shuffle=True, rank=r, world_size=2)} for r in (0, 1)]
    # 3 shards over 2 ranks: padded to 4, so one shard is read twice and the rest once, on different ranks.
    assert len(seen[0] | seen[1]) == 40 and len(seen[0] & seen[1]) <= 16


def test_data_config_composes_and_serves_batches(corpus: Path, tmp_path: Path) -> None:
    import hydra

    from tests.helpers import compose_cfg
    from tests.vision_data import tiny_image_text_overrides

    overrides = ["data=image_text", *tiny_image_text_overrides(corpus), "data.caption_kind=long"]
    cfg = compose_cfg("train", overrides, tmp_path)
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    assert isinstance(dm, ImageTextDataModule) and dm.test_names() == ["test", "test_seen"]
    b = next(iter(dm.train_dataloader()))
    assert b["image"].shape == (4, 3, 32, 32) and set(b["captions"]) == set(LANGS)
    assert [sum(len(x["ids"]) for x in loader) for loader in dm.test_dataloader()] == [12, 12]

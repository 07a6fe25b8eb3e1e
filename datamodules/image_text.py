"""Image-text pairs for contrastive training, from WebDataset tar shards or a folder with a captions JSONL.

A path is read by what it is: a folder with ``shards.json`` or ``*.tar`` files (or one ``.tar``) is a shard set,
streamed (``<id>.png|jpg|jpeg|webp`` + ``<id>.json`` per sample); a folder with ``captions.jsonl`` (or a
``.jsonl`` file) is the folder form, one row per image with ``image`` relative to the JSONL's folder. Rows carry
``{"id", "captions": {lang: {"short", "long"}}, "attributes"?}``, as ``corpus=vision`` writes them.

Batches: ``image`` ``[B, 3, H, W]`` (normalised), ``ids``, ``attributes``, and either ``captions``
``{lang: {kind: [B] str}}`` or, with ``text_embeddings`` set, ``text_emb`` ``{lang: {kind: [B, K, D]}}`` from an
offline cache, so no text encoder runs during training. Unreadable images, JSONL lines and samples are skipped with
one logged message naming the file and the reason (and a line in ``bad_input_log`` when set).
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from common.io import append_jsonl
from datamodules.shards import split_by_rank
from datamodules.text import Paths, named_paths

log = logging.getLogger(__name__)

KINDS = ("short", "long")
IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class TextEmbeddingCache(Protocol):
    """What the datamodule needs from an offline text-embedding cache (``vision.flame.cache.EmbeddingCache``)."""

    def lookup(self, row_ids: Sequence[str], lang: str, kind: str) -> torch.Tensor:
        """Facet vectors ``[B, K, D]`` of the rows' ``lang`` captions of ``kind``."""
        ...


def report_bad(log_path: str | None, where: str, reason: str, stage: str) -> None:
    """Log a skipped input, and append it to the bad-input log when there is one."""
    log.warning("skipping %s: %s", where, reason)
    if log_path:
        append_jsonl(log_path, {"input": where, "reason": reason, "stage": stage})


def is_shards(path: str | Path) -> bool:
    """A shard set (folder with shards.json or .tar files, or one .tar), as against the folder+JSONL form."""
    p = Path(path)
    return p.suffix == ".tar" or (p.is_dir() and ((p / "shards.json").is_file() or any(p.glob("*.tar"))))


def shard_urls(path: str | Path) -> list[str]:
    """The tar files of a shard set, in index order (``shards.json``) or by name."""
    p = Path(path)
    if p.suffix == ".tar":
        return [str(p)]
    index = p / "shards.json"
    if index.is_file():
        try:
            return [str(p / s["url"]) for s in json.loads(index.read_text(encoding="utf-8"))["shards"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{index}: unreadable shard index ({type(e).__name__}: {e})") from e
    return [str(t) for t in sorted(p.glob("*.tar"))]


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "expected a JSON object"
    if not isinstance(row.get("id"), (str, int)) or str(row.get("id")) == "":
        return "missing field 'id'"
    if not isinstance(row.get("captions"), dict):
        return "missing field 'captions' ({lang: {short, long}})"
    return None


def read_rows(path: str | Path, bad_log: str | None = None, stage: str = "train") -> list[dict[str, Any]]:
    """Rows of the folder form, ``image`` resolved against the JSONL's folder; bad lines reported and skipped."""
    p = Path(path)
    jsonl = p / "captions.jsonl" if p.is_dir() else p
    if not jsonl.is_file():
        raise FileNotFoundError(f"{p}: no captions.jsonl (image-text data is a shard folder, or images and a "
                                "captions.jsonl)")
    rows = []
    for lineno, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            report_bad(bad_log, f"{jsonl}:{lineno}", f"invalid JSON ({e.msg})", stage)
            continue
        problem = _row_problem(row) or (None if isinstance(row.get("image"), str) else "missing field 'image'")
        if problem:
            report_bad(bad_log, f"{jsonl}:{lineno}", problem, stage)
            continue
        rows.append({**row, "id": str(row["id"]), "image": str(jsonl.parent / row["image"])})
    return rows


class ImageTransform:
    """PIL image -> normalised ``[3, H, W]``; training crops lightly (no flips or colour jitter: captions name
    left/right and colours, so those augmentations would make the captions wrong)."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], train: bool,
                 crop_scale: Sequence[float] = (0.9, 1.0)):
        self.size, self.train, self.crop_scale = size, train, tuple(crop_scale)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, img: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        img = img.convert("RGB")
        if self.train:
            rng = rng or random.Random(int(torch.randint(2**31, ()).item()))  # seeded per worker by Lightning
            w, h = img.size
            scale = rng.uniform(*self.crop_scale)
            cw, ch = max(1, round(w * scale ** 0.5)), max(1, round(h * scale ** 0.5))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            img = img.crop((x, y, x + cw, y + ch))
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
        return (pixels - self.mean) / self.std  # [3, H, W]


def load_image(src: str | bytes, name: str) -> Image.Image | str:
    """The decoded image, or why it can't be used."""
    try:
        img = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
        img.load()
        return img
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return f"unreadable image ({type(e).__name__}: {e})"


class Sampler:
    """Turns a row and its image into a training item, choosing the caption languages and kinds."""

    def __init__(self, transform: ImageTransform, langs: Sequence[str] | None, kinds: Sequence[str],
                 bad_log: str | None, stage: str):
        self.transform, self.langs, self.kinds = transform, list(langs) if langs else None, list(kinds)
        self.bad_log, self.stage = bad_log, stage

    def __call__(self, row: dict[str, Any], src: str | bytes, name: str,
                 rng: random.Random | None = None) -> dict[str, Any] | None:
        img = load_image(src, name)
        if isinstance(img, str):
            report_bad(self.bad_log, name, img, self.stage)
            return None
        langs = self.langs or sorted(row["captions"])
        captions: dict[str, dict[str, str]] = {}
        for lang in langs:
            by_kind = row["captions"].get(lang)
            texts = {k: by_kind.get(k) for k in self.kinds} if isinstance(by_kind, dict) else {}
            if not all(isinstance(t, str) and t.strip() for t in texts.values()) or not texts:
                report_bad(self.bad_log, name, f"no {lang} {'/'.join(self.kinds)} caption", self.stage)
                return None
            captions[lang] = texts  # type: ignore[assignment]
        return {"image": self.transform(img, rng), "id": str(row["id"]), "captions": captions,
                "attributes": row.get("attributes")}


class FolderDataset(Dataset):
    """The folder+JSONL form: images read from disk by index."""

    def __init__(self, rows: list[dict[str, Any]], make: Sampler):
        self.rows, self.make = rows, make

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        return self.make(row, row["image"], row["image"])


class ShardDataset(IterableDataset):
    """Samples streamed from tar shards; each rank and DataLoader worker reads its own shards (DDP)."""

    def __init__(self, urls: list[str], make: Sampler, shuffle: bool, shuffle_buffer: int = 1000, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        super().__init__()
        self.urls, self.make, self.shuffle, self.shuffle_buffer = urls, make, shuffle, shuffle_buffer
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        worker = get_worker_info()
        rng = random.Random(f"{self.seed}:{epoch}:{self.rank}:{worker.id if worker else 0}")
        urls = list(self.urls)
        if self.shuffle:
            random.Random(f"{self.seed}:{epoch}").shuffle(urls)  # the same order on every rank, then split
        ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False, handler=self._shard_error,
                            nodesplitter=partial(split_by_rank, rank=self.rank, world_size=self.world_size),
                            workersplitter=wds.split_by_worker)
        if self.shuffle and self.shuffle_buffer > 1:
            ds = ds.shuffle(self.shuffle_buffer, seed=rng.randrange(2**31))
        for s in ds:
            name = f"{s.get('__url__', '?')}:{s.get('__key__', '?')}"
            try:
                row = json.loads(s["json"])
                problem = _row_problem(row)
            except (KeyError, ValueError) as e:
                problem = f"no readable metadata ({type(e).__name__}: {e})"
            image = next((s[e] for e in IMAGE_EXTS if e in s), None)
            if problem is None and image is None:
                problem = f"no image ({'/'.join(IMAGE_EXTS)}) in the sample"
            if problem is not None or image is None:
                report_bad(self.make.bad_log, name, problem or "no image", self.make.stage)
                continue
            item = self.make(row, image, name, rng)
            if item is not None:
                yield item

    def _shard_error(self, exn: Exception) -> bool:
        report_bad(self.make.bad_log, str(exn.args[-1] if len(exn.args) > 1 else "<shard>"),
                   f"unreadable shard ({type(exn).__name__}: {exn.args[0] if exn.args else exn})", self.make.stage)
        return True


def collate(items: list[dict[str, Any] | None], cache: TextEmbeddingCache | None = None) -> dict[str, Any] | None:
    """Stack images; captions (or cached text embeddings) as ``{lang: {kind: ...}}``."""
    good = [i for i in items if i is not None]
    if not good:
        return None
    ids = [i["id"] for i in good]
    batch: dict[str, Any] = {"image": torch.stack([i["image"] for i in good]), "ids": ids,
                             "attributes": [i["attributes"] for i in good]}
    langs = good[0]["captions"]
    if cache is not None:
        batch["text_emb"] = {lang: {k: cache.lookup(ids, lang, k) for k in kinds} for lang, kinds in langs.items()}
    else:
        batch["captions"] = {lang: {k: [i["captions"][lang][k] for i in good] for k in kinds}
                             for lang, kinds in langs.items()}
    return batch


class ImageTextDataModule(L.LightningDataModule):
    """Images with captions in several languages, from shards or folder+JSONL (chosen by what each path is)."""

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: Paths | None = None,
        image_size: int = 64,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        augment: bool = True,
        crop_scale: Sequence[float] = (0.9, 1.0),
        train_langs: list[str] | None = None,
        eval_langs: list[str] | None = None,
        caption_kind: str = "short",
        text_embeddings: str | None = None,
        load_cache: Callable[[str], TextEmbeddingCache] | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        bad_input_log: str | None = None,
    ):
        """
        Args:
            test_path: one path, or ``{name: path}`` for several test sets (one test dataloader each, in order).
            train_langs: caption languages of training batches (None: every language of a row); e.g.
                ``[eng_Latn]`` for English-only training. ``eval_langs`` is the same for validation and test.
            caption_kind: ``short``, ``long`` or ``both``.
            text_embeddings: an offline embedding cache directory; batches then carry ``text_emb`` instead of
                ``captions``. ``load_cache`` opens it (e.g. ``vision.flame.cache.EmbeddingCache.open``; the
                datamodule can't import a model family, so the config passes the function).
        """
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["load_cache"])
        if caption_kind not in (*KINDS, "both"):
            raise ValueError(f"data.caption_kind must be short, long or both, got {caption_kind!r}")
        if text_embeddings and load_cache is None:
            raise ValueError("data.text_embeddings is set but data.load_cache is not (the function that opens it)")
        self.load_cache = load_cache
        self._cache: TextEmbeddingCache | None = None

    @property
    def hp(self) -> Any:
        """The constructor arguments (``self.hparams`` typed loosely for attribute access)."""
        return self.hparams

    def kinds(self) -> tuple[str, ...]:
        """Caption kinds each batch carries."""
        return KINDS if self.hp.caption_kind == "both" else (self.hp.caption_kind,)

    def model_kwargs(self) -> dict[str, Any]:
        """An image-text model needs nothing from the data to be built."""
        return {}

    def text_cache(self) -> TextEmbeddingCache | None:
        """The offline text-embedding cache, opened once (None: batches carry captions)."""
        if self.hp.text_embeddings and self._cache is None:
            assert self.load_cache is not None
            self._cache = self.load_cache(str(self.hp.text_embeddings))
        return self._cache

    def test_names(self) -> list[str]:
        """Names of the test sets, in test-dataloader order."""
        return list(named_paths(self.hp.test_path))

    def dataset(self, path: str, stage: str) -> Dataset | IterableDataset:
        """The dataset of ``path`` (shards stream; the folder form is indexed)."""
        train = stage == "train"
        transform = ImageTransform(self.hp.image_size, self.hp.mean, self.hp.std, train and self.hp.augment,
                                   self.hp.crop_scale)
        make = Sampler(transform, self.hp.train_langs if train else self.hp.eval_langs, self.kinds(),
                       self.hp.bad_input_log, stage)
        if not is_shards(path):
            rows = read_rows(path, self.hp.bad_input_log, stage)
            if not rows:
                raise ValueError(f"{path}: no usable rows")
            return FolderDataset(rows, make)
        urls = shard_urls(path)
        if not urls:
            raise FileNotFoundError(f"{path}: no tar shards")
        trainer = self.trainer
        return ShardDataset(urls, make, shuffle=train, shuffle_buffer=self.hp.shuffle_buffer, seed=self.hp.seed,
                            rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1)

    def loader(self, path: str | None, stage: str) -> DataLoader:
        """Batches of ``path`` for ``stage`` (train shuffles and augments)."""
        if not path:
            raise ValueError(f"data: no path for the {stage} set")
        ds = self.dataset(path, stage)
        train = stage == "train"
        size = self.hp.batch_size if train else (self.hp.eval_batch_size or self.hp.batch_size)
        workers = self.hp.num_workers
        if isinstance(ds, ShardDataset):
            workers = min(workers, len(ds.urls))
        return DataLoader(ds, batch_size=size, shuffle=train and not isinstance(ds, IterableDataset),
                          collate_fn=partial(collate, cache=self.text_cache()), num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(), drop_last=False)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.hp.train_path, "train")

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.hp.val_path, "val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self.loader(p, "test") for p in named_paths(self.hp.test_path).values()]
        if not loaders:
            raise ValueError("data.test_path is not set")
        return loaders[0] if len(loaders) == 1 else loaders


def image_text_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every row of a shard set or folder form with its image bytes (``image_bytes``), in stored order."""
    if is_shards(path):
        for s in wds.WebDataset(shard_urls(path), shardshuffle=False, empty_check=False):
            row = json.loads(s["json"])
            yield {**row, "image_bytes": next(s[e] for e in IMAGE_EXTS if e in s)}
    else:
        for row in read_rows(path):
            yield {**row, "image_bytes": Path(row["image"]).read_bytes()}

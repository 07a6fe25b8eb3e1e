"""Generated image-text corpus: procedural scenes with short and long captions in six languages.

python scripts/make_corpus.py corpus=vision [corpus.train=8000 corpus.image_size=64]

Writes under ``out_dir``, every split in both forms users bring their own data in:

- ``shards/{split}/shard-000000.tar`` ...: WebDataset samples ``<id>.png`` + ``<id>.json`` (the row below without
  ``image``), and ``shards/{split}/shards.json`` (format, sample counts, shard list);
- ``folder/{split}/images/<id>.png`` and ``folder/{split}/captions.jsonl``: one row per image,
  ``{"id", "image" (relative to the folder), "split", "captions": {lang: {"short", "long"}}, "attributes"}``;
- ``stats.json``: counts, caption lengths and the held-out colour+shape pairs.

Splits: ``train`` never shows a held-out colour+shape pair; ``dev`` and ``test`` show at least one in every image
(composition never seen in training); ``test_seen`` has only seen pairs, for comparison. No scene repeats, and
no short caption repeats within or across the evaluation splits or reappears in training.
"""

from __future__ import annotations

import io
import json
import logging
import random
import shutil
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open
from datamodules.corpus.text import existing_corpus
from datamodules.corpus.vision_captions import LANGS, captions, meanings
from datamodules.corpus.vision_scenes import holdout_pairs, png_bytes, render, sample_scene, scene_pairs

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test", "test_seen")
UNSEEN = ("dev", "test")
"""Splits whose every image shows a held-out colour+shape pair."""
INDEX = "shards.json"


@dataclass
class VisionCorpusConfig:
    """What to generate."""

    out_dir: str = "data/vision"
    """Output folder."""
    langs: list[str] = field(default_factory=lambda: list(LANGS))
    """Caption languages (a subset of datamodules.corpus.vision_captions.LANGS)."""
    train: int = 8000
    """Training images."""
    dev: int = 500
    """Development images (held-out pairs)."""
    test: int = 1000
    """Test images (held-out pairs)."""
    test_seen: int = 1000
    """Test images with seen pairs only (same size as ``test``, so recall is comparable)."""
    image_size: int = 96
    """Side of the square RGB images, in pixels."""
    supersample: int = 2
    """Scenes are drawn this many times larger and shrunk (antialiased edges and textures)."""
    max_objects: int = 4
    """At most this many objects per scene (1-4)."""
    holdout: int = 8
    """Colour+shape pairs that appear only in dev and test."""
    shard_size: int = 1000
    """Samples per tar shard."""
    seed: int = 0
    """Seed of scenes, held-out pairs and drawing."""
    overwrite: bool = False
    """Rebuild even when the outputs exist."""


def sample_splits(cfg: VisionCorpusConfig) -> dict[str, list[dict[str, Any]]]:
    """Scene attribute structures per split, held-out splits first.

    No scene repeats anywhere, no short caption repeats within the evaluation splits (every caption retrieves one
    image), and training never shows an evaluation image's short caption (which only textures would tell apart).
    """
    if not 1 <= cfg.max_objects <= 4:
        raise ValueError(f"corpus.max_objects must be 1-4, got {cfg.max_objects}")
    held = set(holdout_pairs(cfg.holdout, cfg.seed))
    seen_scenes: set[str] = set()
    eval_short: set[str] = set()
    out: dict[str, list[dict[str, Any]]] = {}
    for split in ("test", "dev", "test_seen", "train"):
        rng = random.Random(f"{cfg.seed}:vision:{split}")
        want, tries = int(getattr(cfg, split)), 0
        scenes: list[dict[str, Any]] = []
        while len(scenes) < want:
            tries += 1
            if tries > 50 * want + 1000:
                raise RuntimeError(f"could only draw {len(scenes)} distinct {split} scenes of {want}; lower the count")
            scene = sample_scene(rng, held, split in UNSEEN, cfg.max_objects)
            key, short = json.dumps(scene, sort_keys=True), meanings(scene)[0].key()
            if key in seen_scenes or short in eval_short:
                continue
            seen_scenes.add(key)
            if split != "train":
                eval_short.add(short)
            scenes.append(scene)
        out[split] = scenes
    return {s: out[s] for s in SPLITS}


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A plain tar of ``(name, data)`` members with fixed metadata (the same input gives the same bytes), atomically."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    with atomic_open(path, "wb") as out:
        out.write(buf.getvalue())


def write_split(root: Path, split: str, rows: list[dict[str, Any]], images: list[bytes], shard_size: int) -> None:
    """One split in both forms; each form appears under its final name only when complete."""
    folder, tmp = root / "folder" / split, root / "folder" / f".{split}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    for row, png in zip(rows, images):
        (tmp / row["image"]).write_bytes(png)
    with open(tmp / "captions.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)

    shards = root / "shards" / split
    shutil.rmtree(shards, ignore_errors=True)
    shards.mkdir(parents=True)
    listing = []
    for k, start in enumerate(range(0, len(rows), shard_size)):
        name = f"shard-{k:06d}.tar"
        chunk = list(zip(rows[start : start + shard_size], images[start : start + shard_size]))
        members = []
        for row, png in chunk:
            meta = json.dumps({k: v for k, v in row.items() if k != "image"}, ensure_ascii=False).encode("utf-8")
            members += [(f"{row['id']}.png", png), (f"{row['id']}.json", meta)]
        write_tar(shards / name, members)
        listing.append({"url": name, "samples": len(chunk)})
    index = {"format": "webdataset", "kind": "image_text", "image_format": "png", "samples": len(rows),
             "shards": listing}
    with atomic_open(shards / INDEX, "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1)


def _lang_stats(rows: list[dict[str, Any]], langs: list[str]) -> dict[str, Any]:
    out = {}
    for lang in langs:
        per = {}
        for kind in ("short", "long"):
            texts = [r["captions"][lang][kind] for r in rows]
            per[kind] = {"distinct": len(set(texts)), "avg_words": round(sum(len(t.split()) for t in texts)
                                                                        / max(1, len(texts)), 2)}
        out[lang] = per
    return out


@CORPUS_BUILDERS.register("vision")
def build_vision_corpus(cfg: VisionCorpusConfig) -> dict[str, Any]:
    """Write the corpus (skipped when it exists with the same config) and return its statistics."""
    root = Path(cfg.out_dir)
    stats_path = root / "stats.json"
    existing = existing_corpus(stats_path, asdict(cfg), cfg.overwrite)
    if existing is not None:
        return existing
    unknown = sorted(set(cfg.langs) - set(LANGS))
    if unknown:
        raise KeyError(f"corpus.langs: no scene captions for {unknown}; known: {', '.join(LANGS)}")
    stats_path.unlink(missing_ok=True)  # a half-rebuilt corpus must not look finished
    t0 = time.perf_counter()
    held = holdout_pairs(cfg.holdout, cfg.seed)
    stats: dict[str, Any] = {"config": asdict(cfg), "langs": list(cfg.langs), "splits": {},
                             "held_out_pairs": [{"colour": c, "shape": s} for c, s in held]}
    for split, scenes in sample_splits(cfg).items():
        rows, images = [], []
        for i, scene in enumerate(scenes):
            rid = f"{split}-{i:06d}"
            images.append(png_bytes(render(scene, cfg.image_size, f"{cfg.seed}:{rid}", cfg.supersample)))
            rows.append({"id": rid, "image": f"images/{rid}.png", "split": split,
                         "captions": captions(scene, cfg.langs), "attributes": scene})
        write_split(root, split, rows, images, cfg.shard_size)
        objects = [len(s["objects"]) for s in scenes]
        stats["splits"][split] = {
            "images": len(rows), "objects": {str(n): objects.count(n) for n in sorted(set(objects))},
            "with_held_out_pair": sum(bool(scene_pairs(s) & set(held)) for s in scenes),
            "relations": sum(len(s["relations"]) for s in scenes), "langs": _lang_stats(rows, list(cfg.langs))}
        log.info("vision corpus: %s written (%d images)", split, len(rows))
    stats["build_seconds"] = round(time.perf_counter() - t0, 1)
    with atomic_open(stats_path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats

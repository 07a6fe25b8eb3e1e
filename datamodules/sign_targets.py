"""Target sentence embeddings for sign translation, computed once by the frozen shared sentence encoder and cached.

The cache is a folder: ``embeddings.npy`` (float32 ``[N, D]``, unit rows), ``keys.jsonl`` (``[lang, text]`` per
row) and ``encoder.json`` (which encoder made them). A cache made by another encoder is rebuilt; texts missing from
it are embedded and appended. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.io import atomic_open, read_json_object

log = logging.getLogger(__name__)
Key = tuple[str, str]
"""(language, text)."""


def encoder_fingerprint(encoder_dir: str | Path) -> str:
    """A short hash of an encoder directory's config and weights."""
    d = Path(encoder_dir)
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        p = d / name
        if p.is_file():
            h.update(name.encode())
            h.update(p.read_bytes() if p.stat().st_size < (64 << 20) else str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


def embed_texts(encoder_dir: str | Path, keys: list[Key], batch_size: int = 256) -> np.ndarray:
    """Unit embeddings ``[N, D]`` of ``(lang, text)`` pairs by the sentence encoder in ``encoder_dir``."""
    from text.towers import TextTowerConfig, build_text_tower, detect_tower_kind

    tower = build_text_tower(TextTowerConfig(kind=detect_tower_kind(encoder_dir), path=str(encoder_dir)))
    out = np.zeros((len(keys), tower.output_dim), np.float32)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (lang, _) in enumerate(keys):
        groups[lang].append(i)
    with torch.inference_mode():
        for lang, idx in groups.items():
            emb = tower.encode([keys[i][1] for i in idx], lang=lang, batch_size=batch_size)
            out[idx] = F.normalize(emb.float(), dim=-1).numpy()
    return out


class TargetEmbeddings:
    """``(lang, text) -> unit vector`` from the cache folder, filled on first use from the encoder."""

    def __init__(self, encoder_dir: str | Path, cache_dir: str | Path):
        self.encoder_dir = Path(encoder_dir)
        self.cache_dir = Path(cache_dir)
        if not (self.encoder_dir / "config.json").is_file():
            raise FileNotFoundError(f"data.text_encoder={self.encoder_dir}: not a sentence encoder directory "
                                    "(config.json is missing); train one with experiment=text_encoder")
        self.fingerprint = encoder_fingerprint(self.encoder_dir)
        self.index: dict[Key, int] = {}
        self.vectors = np.zeros((0, 0), np.float32)
        self._load()

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def _load(self) -> None:
        meta = self.cache_dir / "encoder.json"
        if not meta.is_file():
            return
        try:
            same = read_json_object(meta).get("fingerprint") == self.fingerprint
            vectors = np.load(self.cache_dir / "embeddings.npy", allow_pickle=False)
            keys = [tuple(json.loads(line)) for line in (self.cache_dir / "keys.jsonl").read_text("utf-8").splitlines()]
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable target-embedding cache (%s); rebuilding it", self.cache_dir, e)
            return
        if not same or len(keys) != len(vectors):
            log.info("%s: made by another encoder (or torn); rebuilding it", self.cache_dir)
            return
        self.vectors = vectors.astype(np.float32)
        self.index = {(str(k[0]), str(k[1])): i for i, k in enumerate(keys)}

    def ensure(self, keys: Iterable[Key]) -> None:
        """Embed and cache every key not cached yet."""
        missing = sorted({k for k in keys if k not in self.index})
        if not missing:
            return
        log.info("embedding %d target sentences with %s", len(missing), self.encoder_dir)
        new = embed_texts(self.encoder_dir, missing)
        self.vectors = new if not self.index else np.concatenate([self.vectors, new])
        start = len(self.index)
        self.index.update({k: start + i for i, k in enumerate(missing)})
        self._save()

    def _save(self) -> None:
        keys = sorted(self.index, key=self.index.__getitem__)
        with atomic_open(self.cache_dir / "embeddings.npy", "wb") as f:
            np.save(f, self.vectors)
        with atomic_open(self.cache_dir / "keys.jsonl", "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(list(k), ensure_ascii=False) + "\n" for k in keys))
        with atomic_open(self.cache_dir / "encoder.json", "w", encoding="utf-8") as f:  # last: marks a whole cache
            json.dump({"encoder": str(self.encoder_dir), "fingerprint": self.fingerprint, "rows": len(keys)}, f)

    def get(self, lang: str, text: str) -> np.ndarray:
        """The vector of one text (``ensure`` it first)."""
        return self.vectors[self.index[(lang, text)]]

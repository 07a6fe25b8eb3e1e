"""``MusicEncoder``: embeddings from a trained CLaMP 3 directory without the training stack.

    enc = MusicEncoder.from_pretrained("runs/train/clamp3_audio_default/model")
    enc.embed("tune.abc"); enc.embed("tune.mid"); enc.embed("tune.wav"); enc.embed("a lively jig in D major")

The modality comes from the extension (.abc .xml .musicxml .mxl .krn, .mid .midi, .wav .flac .mp3 .ogg); any other
string is text. Every vector is a unit vector in the one shared space.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from common import hub
from music.clamp.evaluation import Collector
from music.clamp.inputs import MusicInputs, modality_of
from music.clamp.model import MODEL_TYPE, ClampModel
from text.tokenizer import SentencePieceTokenizer

PathOrText = str | os.PathLike[str]


class MusicEncoder:
    """A loaded model and its input readers (with the audio feature cache)."""

    def __init__(self, net: ClampModel, tokenizer: SentencePieceTokenizer,
                 audio_cache: str | os.PathLike[str] | None = None, batch_size: int = 16):
        self.net = net.eval()
        self.inputs = MusicInputs(net.cfg, tokenizer, audio_cache)
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike[str], device: str | None = None,
                        audio_cache: str | os.PathLike[str] | None = None) -> MusicEncoder:
        """Load an exported directory (``config.json``, ``model.safetensors``, ``tokenizer.model``)."""
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        loaded = hub.load_pretrained(model_dir, dev, expect=MODEL_TYPE)
        return cls(cast(ClampModel, loaded.model), loaded.files["tokenizer"], audio_cache)

    @classmethod
    def from_checkpoint(cls, ckpt: str, audio_cache: str | os.PathLike[str] | None = None) -> MusicEncoder:
        """An exported directory, or a Lightning checkpoint of ``ClampModule``."""
        if Path(ckpt).is_dir():
            return cls.from_pretrained(ckpt, audio_cache=audio_cache)
        from music.clamp.module import ClampModule

        module = ClampModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        return cls(module.net, module.tokenizer, audio_cache)

    @property
    def dim(self) -> int:
        return self.net.cfg.embed_dim

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def embed(self, x: PathOrText | Sequence[PathOrText]) -> np.ndarray:
        """``[E]`` for one file or text, ``[B, E]`` for a list; a bad file raises ``ValueError`` naming it."""
        if isinstance(x, str | os.PathLike):
            return self.embed([x])[0]
        items = list(x)
        out = np.zeros((len(items), self.dim), np.float32)
        texts = [n for n, i in enumerate(items) if not is_file_input(i)]
        if texts:
            out[texts] = self.embed_texts([str(items[n]) for n in texts]).cpu().numpy()
        files = [n for n in range(len(items)) if n not in set(texts)]
        for n, got in zip(files, self.embed_files([items[n] for n in files])):
            if isinstance(got, str):
                raise ValueError(got)
            out[n] = got
        return out

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> Tensor:
        """``[B, E]`` text embeddings."""
        parts = []
        for start in range(0, len(texts), self.batch_size * 4):
            ids, mask = self.inputs.texts(texts[start : start + self.batch_size * 4])
            parts.append(self.net.embed_text(ids.to(self.device), mask.to(self.device)))
        return torch.cat(parts) if parts else torch.zeros(0, self.dim)

    @torch.no_grad()
    def embed_files(self, paths: Sequence[PathOrText]) -> list[np.ndarray | str]:
        """A unit vector per music file, or for a file that can't be read, ``"<path>: <reason>"``."""
        out: list[np.ndarray | str] = [""] * len(paths)
        ready: dict[str, list[tuple[int, Tensor]]] = {"symbolic": [], "audio": []}
        for n, path in enumerate(paths):
            try:
                kind, x = self.inputs.file(path)
                ready[kind].append((n, x))
            except ValueError as e:
                out[n] = f"{path}: {e}"
        for kind, items in ready.items():
            for start in range(0, len(items), self.batch_size):
                chunk = items[start : start + self.batch_size]
                emb = self._embed(kind, [x for _, x in chunk]).cpu().numpy()
                for (n, _), vec in zip(chunk, emb):
                    out[n] = vec
        return out

    def _embed(self, kind: str, xs: list[Tensor]) -> Tensor:
        if kind == "audio":
            feats, mask = self.inputs.audio_batch(xs)
            return self.net.embed_audio(feats.to(self.device), mask.to(self.device))
        ids, mask = self.inputs.symbolic_batch(xs)
        return self.net.embed_symbolic(ids.to(self.device), mask.to(self.device))

    def collect(self, rows: Sequence[dict[str, Any]], bare_fields: tuple[str, ...] = ()) -> Collector:
        """Embeddings of every modality and description language of manifest rows (``datamodules.music``);
        unreadable files are reported and left out. With ``bare_fields``, ABC is also embedded without the header
        lines that start with them (as ``abc_bare``)."""
        import logging

        c = Collector()
        for m in ("abc", "midi", "audio"):
            have = [r for r in rows if r.get(m)]
            got = self.embed_files([r[m] for r in have])
            for r, vec in zip(have, got):
                if isinstance(vec, str):
                    logging.getLogger(__name__).warning("skipping %s", vec)
                else:
                    c.add_named(m, [r["id"]], torch.from_numpy(vec)[None])
        if bare_fields:
            for r in rows:
                if r.get("abc") and r["id"] in set(c.ids.get("abc", [])):
                    score = self.inputs.sheet(r["abc"], bare_fields)
                    c.add_named("abc_bare", [r["id"]], self._embed("symbolic", [score]).cpu())
        for lang in sorted({lang for r in rows for lang in r["texts"]}):
            have = [r for r in rows if r["texts"].get(lang)]
            c.add_named(f"text:{lang}", [r["id"] for r in have], self.embed_texts([r["texts"][lang] for r in have]))
        return c


def is_file_input(x: PathOrText) -> bool:
    """A path-like, or a string whose extension names a music file; anything else is text."""
    return isinstance(x, os.PathLike) or ("\n" not in str(x) and modality_of(str(x)) is not None)

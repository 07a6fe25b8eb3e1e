"""The embedders of the retrieval engine: which model encodes which files, registered by the families.

A family registers one loader per modality it embeds, with the file extensions it reads::

    @register_embedder("text", (".txt",), name="text_tower", recognises=lambda config: ...)
    def load(model_dir: str) -> Embedder: ...

The engine picks, for a model directory, the registered embedders whose ``recognises`` accepts its
``config.json``, one per modality, and the modality of a file from its extension. Nothing here needs faiss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from common.io import read_json_object
from common.registry import Registry

Entry = tuple[str, Any]
"""One thing to embed read from a file: a key ("" for the whole file, else e.g. a line number) and the input."""


class Embedder(Protocol):
    """A loaded model's encoder for one modality."""

    @property
    def dim(self) -> int:
        """Width of the vectors."""

    def embed(self, inputs: list[Any]) -> np.ndarray:
        """``[B, dim]`` float vectors, one per input (normalised or not: the engine normalises)."""


def read_whole_file(path: Path) -> list[Entry]:
    """The default reader: the file is one input, given to the embedder as its path."""
    return [("", path)]


def read_text_lines(path: Path) -> list[Entry]:
    """Each non-empty line of a UTF-8 text file is an input, keyed by its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start}: {e.reason})") from None
    entries = [(str(i), line.strip()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not entries:
        raise ValueError("no text (the file is empty or blank)")
    return entries


def everything(config: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class EmbedderKind:
    """A registered way to embed one modality with some kind of model."""

    name: str
    """Registry key, recorded in an index's manifest."""
    modality: str
    """``text``, ``image``, ``audio``, ``music``...; a query string is embedded by the ``text`` embedder."""
    extensions: tuple[str, ...]
    """File suffixes it reads (lower case, with the dot)."""
    load: Callable[[str], Embedder]
    """Model directory -> a ready embedder."""
    recognises: Callable[[Mapping[str, Any]], bool] = everything
    """Whether a model directory with this ``config.json`` (``{}`` when there is none) is one it can load."""
    read: Callable[[Path], list[Entry]] = read_whole_file
    """File -> the inputs it holds; raises ``ValueError`` (or ``OSError``) with the reason for a bad file."""


EMBEDDERS: Registry[EmbedderKind] = Registry("retrieval embedder")
"""Embedder name -> kind; filled by the families (text/retrieval_embedder.py, vision.flame, music.clamp...)."""


def register_embedder(modality: str, extensions: Iterable[str], *, name: str | None = None,
                      recognises: Callable[[Mapping[str, Any]], bool] = everything,
                      read: Callable[[Path], list[Entry]] = read_whole_file,
                      ) -> Callable[[Callable[[str], Embedder]], Callable[[str], Embedder]]:
    """Decorator: register ``load(model_dir) -> Embedder`` for ``modality`` files with these ``extensions``."""
    exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)

    def add(load: Callable[[str], Embedder]) -> Callable[[str], Embedder]:
        EMBEDDERS.add(name or modality, EmbedderKind(name or modality, modality, exts, load, recognises, read))
        return load

    return add


def model_config(model_dir: str | Path) -> dict[str, Any]:
    """``<model_dir>/config.json``, or ``{}`` when the directory has none; a missing directory is an error."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"model={model_dir}: no such directory")
    return read_json_object(path / "config.json") if (path / "config.json").is_file() else {}


def kinds_for(model_dir: str | Path, chosen: Mapping[str, str] | None = None) -> dict[str, EmbedderKind]:
    """Modality -> the one embedder that loads ``model_dir`` (``chosen`` names one where several would)."""
    config = model_config(model_dir)
    chosen = dict(chosen or {})
    by_modality: dict[str, list[EmbedderKind]] = {}
    for name in EMBEDDERS:
        kind = EMBEDDERS.get(name)
        if kind.recognises(config):
            by_modality.setdefault(kind.modality, []).append(kind)
    out: dict[str, EmbedderKind] = {}
    for modality, kinds in by_modality.items():
        if modality in chosen:
            kind = EMBEDDERS.get(chosen[modality], where=f"embedders.{modality}")
            if kind.modality != modality:
                raise ValueError(f"embedders.{modality}={kind.name}: that embedder is for {kind.modality}")
            out[modality] = kind
        elif len(kinds) == 1:
            out[modality] = kinds[0]
        else:
            raise ValueError(f"model={model_dir}: several {modality} embedders recognise it "
                             f"({', '.join(k.name for k in kinds)}); name one with embedders.{modality}=<name>")
    if not out:
        raise ValueError(f"model={model_dir} (model_type {config.get('model_type')!r}): no registered retrieval "
                         f"embedder recognises it; known: {', '.join(EMBEDDERS.names()) or 'none'}")
    return out


def by_extension(kinds: Mapping[str, EmbedderKind]) -> dict[str, EmbedderKind]:
    """Suffix -> embedder; two modalities claiming one suffix is an error."""
    out: dict[str, EmbedderKind] = {}
    for kind in kinds.values():
        for ext in kind.extensions:
            if ext in out and out[ext] is not kind:
                raise ValueError(f"{ext} files are claimed by both {out[ext].name} and {kind.name}")
            out[ext] = kind
    return out


def describe(kinds: Mapping[str, EmbedderKind]) -> str:
    """``.txt (text), .png .jpg (image)`` for messages."""
    return ", ".join(f"{' '.join(k.extensions)} ({k.modality})" for k in kinds.values())


def model_fingerprint(model_dir: str | Path, small: int = 1 << 20) -> str:
    """A hash naming a model's contents: every file's name and size, and the bytes of the small ones (configs).

    Embeddings cached under one fingerprint are never reused for another model.
    """
    h = hashlib.sha256()
    root = Path(model_dir)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        size = f.stat().st_size
        h.update(json.dumps([f.relative_to(root).as_posix(), size]).encode())
        if size <= small:
            h.update(f.read_bytes())
    return h.hexdigest()


class Embedders:
    """The embedders of one model, loaded on first use."""

    def __init__(self, model_dir: str | Path, chosen: Mapping[str, str] | None = None):
        self.model_dir = str(model_dir)
        self.kinds = kinds_for(model_dir, chosen)
        self.suffixes = by_extension(self.kinds)
        self._loaded: dict[str, Embedder] = {}

    def kind_of(self, path: str | Path) -> EmbedderKind | None:
        """The embedder for a file, by its suffix; ``None`` when this model reads no such files."""
        return self.suffixes.get(Path(path).suffix.lower())

    def get(self, modality: str) -> Embedder:
        if modality not in self.kinds:
            raise ValueError(f"model={self.model_dir} embeds {', '.join(self.kinds)}, not {modality}")
        if modality not in self._loaded:
            self._loaded[modality] = self.kinds[modality].load(self.model_dir)
        return self._loaded[modality]

    def unknown_file(self, path: str | Path) -> str:
        """The message for a file no embedder of this model reads."""
        suffix = Path(path).suffix.lower() or "(no extension)"
        return f"{path}: no embedder of model={self.model_dir} reads {suffix} files; it reads {describe(self.kinds)}"

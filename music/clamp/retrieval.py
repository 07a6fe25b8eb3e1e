"""CLaMP 3's retrieval embedders (common.retrieval): sheet music, MIDI, audio and text of one exported model, all in
one space, so ``scripts/retrieve.py`` indexes a folder of any mix of them and answers text or file queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from common.retrieval.embedders import read_text_lines, register_embedder
from music.clamp.inputs import MODALITY_EXTS
from music.clamp.model import MODEL_TYPE


def recognises(config: Mapping[str, Any]) -> bool:
    return config.get("model_type") == MODEL_TYPE


class ClampEmbedder:
    """One loaded ``MusicEncoder`` behind the engine's ``Embedder`` interface, for one modality."""

    def __init__(self, model_dir: str, modality: str):
        from music.clamp.encoder import MusicEncoder

        self.encoder = MusicEncoder.from_pretrained(model_dir)
        self.modality = modality

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def embed(self, inputs: list[Any]) -> np.ndarray:
        if self.modality == "text":
            return self.encoder.embed_texts([str(t) for t in inputs]).cpu().numpy()
        out = self.encoder.embed_files(inputs)
        bad = next((v for v in out if isinstance(v, str)), None)
        if bad is not None:  # the engine embeds a failed batch file by file, so only the bad file is reported
            raise ValueError(bad)
        return np.stack([v for v in out if not isinstance(v, str)])


@register_embedder("sheet", MODALITY_EXTS["sheet"], name="clamp3_sheet", recognises=recognises)
def load_sheet(model_dir: str) -> ClampEmbedder:
    return ClampEmbedder(model_dir, "sheet")


@register_embedder("midi", MODALITY_EXTS["midi"], name="clamp3_midi", recognises=recognises)
def load_midi(model_dir: str) -> ClampEmbedder:
    return ClampEmbedder(model_dir, "midi")


@register_embedder("audio", MODALITY_EXTS["audio"], name="clamp3_audio", recognises=recognises)
def load_audio(model_dir: str) -> ClampEmbedder:
    return ClampEmbedder(model_dir, "audio")


@register_embedder("text", (".txt",), name="clamp3_text", recognises=recognises, read=read_text_lines)
def load_text(model_dir: str) -> ClampEmbedder:
    return ClampEmbedder(model_dir, "text")

"""Sign-language translation from Python: ``SignTranslator.from_pretrained(dir).translate(pose, tgt_langs=[...])``.

A pose is a ``.npy`` (``[T, 543, 4]``) or ``.pose`` file, a ``PoseClip`` or an array in the Holistic layout; the
result is ``{lang: sentence}``. The embedding the decoder reads is language-agnostic, so one encoding serves every
target language the decoder writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vision.sign.augment import PosePipeline
from vision.sign.evaluation import decode
from vision.sign.hub import load_translator
from vision.sign.model import SignTranslationModel
from vision.sign.pose_io import PoseClip, from_array, normalise

PoseInput = str | os.PathLike[str] | PoseClip | np.ndarray


class SignTranslator:
    """A loaded ``sign_translator`` directory: pose -> sentence embedding -> text in any of its languages."""

    def __init__(self, model: SignTranslationModel, tokenizer: object, device: str | torch.device = "cpu",
                 fps: float | None = None):
        """``fps``: the frame rate inputs are resampled to (default: the one the encoder was trained on)."""
        fps = fps or model.cfg.encoder.fps
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.pipeline = PosePipeline(None, fps=fps, max_frames=model.cfg.encoder.max_frames)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike[str], device: str | torch.device = "cpu",
                        ) -> SignTranslator:
        model, tokenizer = load_translator(model_dir, device)
        return cls(model, tokenizer, device)

    @property
    def langs(self) -> list[str]:
        """Languages the decoder writes."""
        return list(self.tokenizer.langs)  # type: ignore[attr-defined]

    def features(self, pose: PoseInput) -> np.ndarray:
        """Model input ``[T, 543, 4]``; ``PoseError`` names a file that can't be used."""
        if isinstance(pose, (str, os.PathLike, Path)):
            clip = self.pipeline.load(pose)
        elif isinstance(pose, PoseClip):
            clip = normalise(pose)
        else:
            clip = normalise(from_array(np.asarray(pose), self.pipeline.fps))
        return self.pipeline(clip)

    def embed(self, poses: Sequence[PoseInput]) -> Tensor:
        """Unit sentence embeddings ``[B, E]``."""
        return self.embed_features([self.features(p) for p in poses])

    @torch.no_grad()
    def embed_features(self, feats: Sequence[np.ndarray]) -> Tensor:
        """Unit sentence embeddings ``[B, E]`` of model inputs (``features``)."""
        t = max(len(f) for f in feats)
        x = torch.zeros(len(feats), t, *feats[0].shape[1:])
        mask = torch.zeros(len(feats), t, dtype=torch.bool)
        for i, f in enumerate(feats):
            x[i, : len(f)] = torch.from_numpy(f)
            mask[i, : len(f)] = True
        return self.model.embed(x.to(self.device), mask.to(self.device))

    def translate_embeddings(self, emb: Tensor, tgt_langs: Sequence[str], beam: int = 4,
                             length_penalty: float = 1.0) -> list[dict[str, str]]:
        """``{lang: sentence}`` per embedding row."""
        out: list[dict[str, str]] = [{} for _ in range(emb.shape[0])]
        for lang in tgt_langs:
            for row, text in zip(out, decode(self.model.decoder, self.tokenizer, emb, lang, beam,  # type: ignore[arg-type]
                                             length_penalty)):
                row[lang] = text
        return out

    def translate_batch(self, poses: Sequence[PoseInput], tgt_langs: Sequence[str] = ("eng_Latn",), beam: int = 4,
                        ) -> list[dict[str, str]]:
        """Translations of several poses, each ``{lang: sentence}``."""
        return self.translate_embeddings(self.embed(poses), tgt_langs, beam) if poses else []

    def translate(self, pose: PoseInput, tgt_langs: Sequence[str] = ("eng_Latn",), beam: int = 4) -> dict[str, str]:
        """``{lang: sentence}`` of one pose sequence."""
        return self.translate_batch([pose], tgt_langs, beam)[0]

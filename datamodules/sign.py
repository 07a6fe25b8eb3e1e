"""Sign-language clips (pose keypoints) paired with translations, for SONAR-SLT and its text-supervised baseline.

Manifests are JSONL rows ``{"id", "pose": <.npy or .pose, relative to the manifest>, "fps"?, "signer"?, "gloss"?,
"texts": {lang: sentence}, "sentence_id"?}``, as ``corpus=sign`` writes them. Each clip's targets are the frozen
shared sentence encoder's embeddings of its translations (``datamodules.sign_targets``, cached once).

Training batches hold ``pose``: poses ``[B, T, 543, 4]``, ``pose_mask [B, T]``, one training language drawn per
clip and step (``lang``, ``text``, ``target [B, D]``, token ``ids``/``ids_mask``), perturbed by the pipeline
(coupled augmentation); and, when ``ae_batch_size`` > 0, ``text``: sentences of every auto-encoding language with
an embedding of the same sentence, for the decoder's text -> embedding -> text training.

Embedding languages (``embed_langs``; by default the sentence encoder's own training languages) are those whose
embeddings the encoder aligns. A target or a decoder input is always one of their embeddings: a sentence in another
language (one the encoder never learnt, whose embedding lies elsewhere) takes the embedding of one of its
translations, drawn afresh each time in training and their mean in evaluation. The decoder auto-encodes across
languages the same way (it reads the embedding of a translation drawn from the embedding languages), so it writes
what a language-agnostic embedding means in any language, which is what the pose encoder gives it.

Evaluation batches carry every evaluation language: ``texts {lang: [B]}``, ``targets {lang: [B, D]}``. The pose
reader and the perturbations come from the config (``pipeline``, e.g. ``vision.sign.augment.PosePipeline``), since
a datamodule may not import a family. Unreadable or empty pose files are skipped, each with one logged message
naming the file and the reason.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from common.io import append_jsonl
from datamodules.bucketing import DurationBatchSampler
from datamodules.sign_targets import TargetEmbeddings
from datamodules.text import Paths, named_paths
from text.tokenizer import SentencePieceTokenizer, pad_ids

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """Pose file (and a ``.npy`` file's frame rate) -> clip (``load``, raising ``ValueError`` naming the file) ->
    features ``[T, 543, 4]``."""

    def load(self, path: str, file_fps: float | None = None) -> Any: ...

    def __call__(self, clip: Any, rng: np.random.Generator | None = None) -> np.ndarray: ...


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows with ``pose`` resolved against the manifest's folder; a broken line is skipped with its reason."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sign manifest not found")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ok = isinstance(row, dict) and isinstance(row.get("pose"), str) and isinstance(row.get("texts"), dict)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            log.warning("%s:%d: skipped (not a JSON object with 'pose' and 'texts')", path, lineno)
            continue
        rows.append({**row, "id": str(row.get("id", f"{path.stem}:{lineno}")), "pose": str(path.parent / row["pose"])})
    return rows


class ClipDataset(Dataset):
    """Clips of one split; training draws a language per item, evaluation keeps every evaluation language."""

    def __init__(self, rows: list[dict[str, Any]], langs: Sequence[str], pipeline: Pipeline, train: bool,
                 bad_log: str | None, seed: int = 0):
        self.rows = [r for r in rows if any(lang in r["texts"] for lang in langs)]
        self.langs, self.pipeline, self.train, self.bad_log = list(langs), pipeline, train, bad_log
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        try:
            pose = self.pipeline(self.pipeline.load(row["pose"], row.get("fps")), self.rng if self.train else None)
        except (ValueError, OSError) as e:
            reason = str(e) if row["pose"] in str(e) else f"{row['pose']}: {e}"
            log.warning("skipping clip %s: %s", row["id"], reason)
            if self.bad_log:
                append_jsonl(self.bad_log, {"id": row["id"], "pose": row["pose"], "reason": reason})
            return None
        texts = {lang: row["texts"][lang] for lang in self.langs if lang in row["texts"]}
        if self.train:
            lang = list(texts)[int(self.rng.integers(len(texts)))]
            texts = {lang: texts[lang]}
        return {"id": row["id"], "pose": pose, "texts": texts, "all_texts": row["texts"]}


class TextDataset(Dataset):
    """(lang, sentence) pairs for the decoder's auto-encoding (the datamodule knows their translations)."""

    def __init__(self, keys: list[tuple[str, str]]):
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple[str, str]:
        return self.keys[i]


class SignDataModule(L.LightningDataModule):
    """Pose clips + multilingual targets; see the module docstring."""

    def __init__(
        self,
        train_manifest: str,
        val_manifest: str | None,
        test_manifest: Paths | None,
        text_encoder: str,
        embedding_cache: str,
        tokenizer_path: str,
        pipeline: Any,
        train_langs: list[str] | None = None,
        eval_langs: list[str] | None = None,
        ae_langs: list[str] | None = None,
        embed_langs: list[str] | None = None,
        text_manifest: str | None = None,
        train_fraction: float = 1.0,
        vocab_size: int = 4000,
        max_text_tokens: int = 96,
        batch_size: int = 32,
        batch_seconds: float | None = None,
        ae_batch_size: int = 64,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        bad_input_log: str | None = None,
    ):
        """``train_langs``: languages paired with the clips (null: all); ``ae_langs``: languages the decoder
        auto-encodes (null: every language of the training texts), which may include languages never paired with
        a clip; ``text_manifest``: extra sentences for that (JSONL rows with ``texts {lang: s}``);
        ``train_fraction``: the share of training clips kept (the data-size ablation); ``batch_seconds``: training
        batches of clips of similar length, at most ``batch_size`` clips and ``batch_seconds`` padded seconds (rows
        need ``frames``; null: random batches of ``batch_size``); ``embed_langs``: languages
        whose embeddings are targets and decoder inputs (null: those the sentence encoder was trained on, its
        ``config.json`` ``langs`` less ``held_out``)."""
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["pipeline"])
        self.pipeline: Pipeline = pipeline
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._tokenizer: SentencePieceTokenizer | None = None
        self._targets: TargetEmbeddings | None = None
        self._sources: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._rng = random.Random(seed)

    @property
    def hp(self) -> Any:
        return self.hparams

    def rows(self, split: str, path: str | None = None) -> list[dict[str, Any]]:
        """Rows of ``train``/``val`` (or any manifest ``path``, keyed by ``split``)."""
        if split not in self._rows:
            path = path or self.hp[f"{split}_manifest"]
            if not path:
                raise ValueError(f"data.{split}_manifest is not set")
            rows = read_manifest(path)
            if split == "train" and self.hp.train_fraction < 1.0:
                keep = max(1, round(len(rows) * self.hp.train_fraction))
                rows = random.Random(self.hp.seed).sample(rows, keep)
            self._rows[split] = rows
        return self._rows[split]

    def train_langs(self) -> list[str]:
        present = sorted({lang for r in self.rows("train") for lang in r["texts"]})
        return [lang for lang in present if not self.hp.train_langs or lang in self.hp.train_langs]

    def embed_langs(self) -> set[str]:
        """Languages whose sentence-encoder embeddings are used (see the module docstring)."""
        if self.hp.embed_langs:
            return set(self.hp.embed_langs)
        cfg = json.loads((Path(self.hp.text_encoder) / "config.json").read_text(encoding="utf-8"))
        known = set(cfg.get("langs") or []) - set(cfg.get("held_out") or [])
        return known or {lang for r in self.rows("train") for lang in r["texts"]}

    def sources(self, texts: dict[str, Any]) -> list[tuple[str, str]]:
        """A row's translations in the embedding languages: what its targets and decoder inputs are made of."""
        langs = self.embed_langs()
        return [(lang, t) for lang, t in sorted(texts.items()) if lang in langs and isinstance(t, str) and t.strip()]

    def target(self, texts: dict[str, Any], lang: str, train: bool) -> np.ndarray:
        """The embedding a clip or sentence in ``lang`` stands for: its own in an embedding language, else one of
        its translations' (drawn in training) or their mean (in evaluation)."""
        if lang in self.embed_langs() and texts.get(lang):
            return self.targets.get(lang, texts[lang])
        src = self.sources(texts)
        if not src:
            raise ValueError(f"no translation in an embedding language ({sorted(self.embed_langs())}) for "
                             f"{texts.get(lang)!r}; set data.embed_langs")
        if train:
            return self.targets.get(*self._rng.choice(src))
        mean = np.mean([self.targets.get(*k) for k in src], axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)

    def ae_keys(self) -> list[tuple[str, str]]:
        """Distinct (lang, sentence) pairs of the training texts (and ``text_manifest``) in the auto-encoding
        languages; each keeps its translations in the embedding languages (``collate_text`` draws one)."""
        rows = self.rows("train") + (read_manifest_texts(self.hp.text_manifest) if self.hp.text_manifest else [])
        sources: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for r in rows:
            src = self.sources(r["texts"])
            for lang, t in r["texts"].items():
                if isinstance(t, str) and t.strip() and (not self.hp.ae_langs or lang in self.hp.ae_langs):
                    sources.setdefault((lang, t), set()).update(src)
        self._sources = {k: sorted(v) for k, v in sources.items()}
        return sorted(self._sources)

    def decoder_langs(self) -> list[str]:
        return sorted({lang for lang, _ in self.ae_keys()} | set(self.train_langs()))

    def eval_langs(self, rows: list[dict[str, Any]]) -> list[str]:
        present = sorted({lang for r in rows for lang in r["texts"]})
        return [lang for lang in present if not self.hp.eval_langs or lang in self.hp.eval_langs]

    @property
    def tokenizer(self) -> SentencePieceTokenizer:
        """The decoder's SentencePiece model, trained on the training texts when ``tokenizer_path`` is absent."""
        if self._tokenizer is None:
            self._tokenizer = SentencePieceTokenizer.load_or_train(
                self.hp.tokenizer_path, lambda: [t for _, t in self.ae_keys()], self.hp.vocab_size,
                what="decoder tokenizer", langs=self.decoder_langs(), character_coverage=1.0)
        return self._tokenizer

    @property
    def targets(self) -> TargetEmbeddings:
        """The target-embedding cache, filled with every text of every configured split on first use."""
        if self._targets is None:
            self._targets = TargetEmbeddings(self.hp.text_encoder, self.hp.embedding_cache)
            rows = [r for split in ("train", "val") if self.hp[f"{split}_manifest"] for r in self.rows(split)]
            for name, path in named_paths(self.hp.test_manifest).items():
                if Path(path).is_file():
                    rows += self.rows(f"test:{name}", path)
            keys = {k for r in rows for k in self.sources(r["texts"])}
            self.ae_keys()
            self._targets.ensure(keys | {k for src in self._sources.values() for k in src})
        return self._targets

    def model_kwargs(self) -> dict[str, Any]:
        """What the model needs from the data before it can be built."""
        return {"embed_dim": self.targets.dim, "vocab_size": len(self.tokenizer),
                "tokenizer_path": str(self.hp.tokenizer_path), "langs": self.decoder_langs()}

    def _encode(self, langs: list[str], texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.hp.max_text_tokens
        return pad_ids([self.tokenizer.encode([t], lang, n)[0] for lang, t in zip(langs, texts)])

    def collate_clips(self, items: list[dict[str, Any] | None], train: bool = False) -> dict[str, Any] | None:
        """Padded poses and their targets; None when every clip of the batch was unreadable."""
        kept = [it for it in items if it is not None]
        if not kept:
            return None
        t = max(len(it["pose"]) for it in kept)
        pose = torch.zeros(len(kept), t, *kept[0]["pose"].shape[1:])
        mask = torch.zeros(len(kept), t, dtype=torch.bool)
        for i, it in enumerate(kept):
            pose[i, : len(it["pose"])] = torch.from_numpy(it["pose"])
            mask[i, : len(it["pose"])] = True
        langs = sorted({lang for it in kept for lang in it["texts"]})
        texts = {lang: [it["texts"].get(lang, "") for it in kept] for lang in langs}
        zero = np.zeros(self.targets.dim, np.float32)
        targets = {lang: torch.from_numpy(np.stack([self.target(it["all_texts"], lang, False) if s else zero
                                                    for it, s in zip(kept, texts[lang])])) for lang in langs}
        batch: dict[str, Any] = {"clip_ids": [it["id"] for it in kept], "pose": pose, "pose_mask": mask,
                                 "texts": texts, "targets": targets}
        if train:  # one drawn language per clip
            lang = [next(iter(it["texts"])) for it in kept]
            text = [next(iter(it["texts"].values())) for it in kept]
            ids, ids_mask = self._encode(lang, text)
            batch.update(lang=lang, text=text, ids=ids, ids_mask=ids_mask,
                         target=torch.from_numpy(np.stack([self.target(it["all_texts"], la, True)
                                                           for it, la in zip(kept, lang)])))
        return batch

    def collate_text(self, items: list[tuple[str, str]]) -> dict[str, Any]:
        langs, texts = [k[0] for k in items], [k[1] for k in items]
        ids, mask = self._encode(langs, texts)
        if not self._sources:
            self.ae_keys()
        # Cross-lingual auto-encoding: the embedding of the sentence in a drawn embedding language.
        emb = torch.from_numpy(np.stack([self.targets.get(*self._rng.choice(self._sources[k])) for k in items]))
        return {"lang": langs, "text": texts, "ids": ids, "ids_mask": mask, "emb": emb}

    def clip_loader(self, rows: list[dict[str, Any]], langs: Sequence[str], train: bool) -> DataLoader:
        if not train:  # clips of similar length side by side: less padding (the order of scoring doesn't matter)
            rows = sorted(rows, key=lambda r: float(r.get("frames") or 0) / float(r.get("fps") or 25))
        ds = ClipDataset(rows, langs, self.pipeline, train, self.hp.bad_input_log, self.hp.seed)
        bs = self.hp.batch_size if train else self.hp.eval_batch_size
        common: dict[str, Any] = {"collate_fn": partial(self.collate_clips, train=train),
                                  "num_workers": self.hp.num_workers, "persistent_workers": self.hp.num_workers > 0}
        if train and self.hp.batch_seconds and all(r.get("frames") for r in ds.rows):
            # Random batches pad every clip to the longest of 32 (about twice the mean length in corpus=sign).
            seconds = [float(r["frames"]) / float(r.get("fps") or 25) for r in ds.rows]
            sampler = DurationBatchSampler(seconds, self.hp.batch_seconds, max_batch_size=bs, seed=self.hp.seed)
            return DataLoader(ds, batch_sampler=sampler, **common)
        return DataLoader(ds, batch_size=bs, shuffle=train, drop_last=train and len(ds) > bs, **common)

    def train_dataloader(self) -> Any:
        self.targets  # noqa: B018 (embed every text before the workers start)
        clips = self.clip_loader(self.rows("train"), self.train_langs(), True)
        if self.hp.ae_batch_size <= 0:
            return CombinedLoader({"pose": clips}, "max_size_cycle")
        text = DataLoader(TextDataset(self.ae_keys()), batch_size=self.hp.ae_batch_size, shuffle=True, drop_last=True,
                          collate_fn=self.collate_text)
        return CombinedLoader({"pose": clips, "text": text}, "max_size_cycle")

    def val_dataloader(self) -> DataLoader:
        rows = self.rows("val")
        return self.clip_loader(rows, self.eval_langs(rows), False)

    def test_loaders(self, max_clips: int = 0) -> dict[str, DataLoader]:
        """A loader per named test manifest, every evaluation language in each batch; ``max_clips`` > 0: a fixed
        random sample of that many clips of each."""
        out = {}
        for name, path in named_paths(self.hp.test_manifest).items():
            if not Path(path).is_file():
                log.warning("test split %s: %s does not exist; skipped", name, path)
                continue
            rows = self.rows(f"test:{name}", path)
            if 0 < max_clips < len(rows):
                rows = random.Random(self.hp.seed).sample(rows, max_clips)
            out[name] = self.clip_loader(rows, self.eval_langs(rows), False)
        return out


def read_manifest_texts(path: str | Path) -> list[dict[str, Any]]:
    """Rows ``{"texts": {lang: sentence}}`` of a text-only JSONL (or ``{"lang", "text"}`` rows)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("texts"), dict):
            rows.append({"texts": row["texts"]})
        elif isinstance(row, dict) and isinstance(row.get("lang"), str) and isinstance(row.get("text"), str):
            rows.append({"texts": {row["lang"]: row["text"]}})
    return rows

"""Units and their durations from aligned TTS manifests (scripts/tts_align.py), for the duration model.

Rows need ``units`` and ``durations`` (checked as ``datamodules.tts.check_alignment`` does); ``lang`` is optional.
No audio is read. A batch (``collate_durations``)::

    units list[list[str]]   durations [B, N] long (0 on padding)   langs list[str]

``model_kwargs()`` gives the module the training units (sorted: the ids don't depend on the row order) and
languages; the module builds the ``UnitVocab`` from them and saves it beside the model.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import read_manifest
from datamodules.tts import check_alignment


def read_durations(path: str, max_units: int | None = None) -> list[dict[str, Any]]:
    """``{units, durations, lang}`` of every row; a row without a valid alignment is a ``ManifestError``.

    Rows of more than ``max_units`` units are left out (attention cost grows with the square of the length).
    """
    rows = []
    for i, row in enumerate(read_manifest(path, resolve_paths=False)):
        check_alignment(row, f"{path}: row {i + 1} ({row['audio']})")
        if max_units is None or len(row["units"]) <= max_units:
            rows.append({"units": row["units"], "durations": row["durations"], "lang": row.get("lang") or ""})
    return rows


def collate_durations(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = max(len(r["units"]) for r in rows)
    durs = torch.zeros(len(rows), n, dtype=torch.long)
    for b, r in enumerate(rows):
        durs[b, : len(r["durations"])] = torch.tensor(r["durations"])
    return {"units": [r["units"] for r in rows], "durations": durs, "langs": [r["lang"] for r in rows]}


class DurationDataModule(L.LightningDataModule):
    """Aligned manifests to batches of unit sequences and durations.

    Args:
        batch_size: rows a batch at most.
        max_batch_units: padded units a training batch at most.
        max_units: rows with more units are left out.
    """

    def __init__(self, train_manifest: str, val_manifest: str, test_manifest: str | None = None,
                 batch_size: int = 64, max_batch_units: int = 8000, num_buckets: int = 10,
                 max_units: int | None = 400, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def rows(self, stage: str) -> list[dict[str, Any]]:
        path = self.hparams[f"{stage}_manifest"]
        if stage not in self._rows:
            self._rows[stage] = read_durations(path, self.hparams["max_units"])
            if not self._rows[stage]:
                raise ValueError(f"{path}: no aligned rows of at most {self.hparams['max_units']} units")
        return self._rows[stage]

    def model_kwargs(self) -> dict[str, Any]:
        train = self.rows("train")
        return {"units": sorted({u for r in train for u in r["units"]}),
                "langs": sorted({r["lang"] for r in train if r["lang"]})}

    def train_dataloader(self) -> DataLoader:
        rows, trainer = self.rows("train"), self.trainer
        # Rows of similar length share a batch (little padding); buckets and batches reshuffle every epoch.
        sampler = DurationBatchSampler(
            [len(r["units"]) for r in rows], max_batch_seconds=self.hparams["max_batch_units"],
            max_batch_size=self.hparams["batch_size"], num_buckets=self.hparams["num_buckets"], shuffle=True,
            seed=self.hparams["seed"], rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        data: Any = rows
        return DataLoader(data, batch_sampler=sampler, collate_fn=collate_durations,
                          num_workers=self.hparams["num_workers"])

    def _eval_loader(self, stage: str) -> DataLoader:
        rows = self.rows(stage)
        data: Any = sorted(rows, key=lambda r: len(r["units"]))  # fixed order: every validation the same batches
        return DataLoader(data, batch_size=self.hparams["batch_size"], collate_fn=collate_durations,
                          num_workers=self.hparams["num_workers"])

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

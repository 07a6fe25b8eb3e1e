"""Music-text rows of a corpus in ``corpus=music``'s layout: JSONL manifests beside ``abc/``, ``midi/`` and ``audio/``.

A row is ``{"id", "abc", "midi", "audio"?, "attributes": {...}, "meaning"?: {"facets"}, "texts": {lang: description}}``
with file paths relative to the manifest's folder. Batches are lists: ``ids``, ``abc`` / ``midi`` / ``audio``
(absolute paths, the modalities asked for), ``texts`` ``{lang: [B] str}``, ``attributes`` (``[B]`` dicts) and
``fits`` (``[B][B]`` bools: row i's description also fits tune j, a false negative for contrastive losses, found from
the attributes a description states, or from identical descriptions when rows have no ``meaning``); the model reads
the files (``music.clamp.inputs``), since how a score becomes patches is the model's business. Rows lacking a
modality the run pairs are skipped with one message naming the manifest line (and a line in ``bad_input_log``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from common.io import append_jsonl

log = logging.getLogger(__name__)
MODALITIES = ("abc", "midi", "audio")


def read_rows(manifest: str | Path, need: tuple[str, ...] = ("abc",), langs: list[str] | None = None,
              bad_input_log: str | None = None) -> list[dict[str, Any]]:
    """The usable rows of a manifest, paths made absolute; bad lines and rows without ``need`` are reported."""
    path = Path(manifest)
    if not path.is_file():
        raise FileNotFoundError(f"music manifest {path} does not exist (scripts/make_corpus.py corpus=music makes it; "
                                "corpus=music_real makes the real tunes)")
    unknown = set(need) - set(MODALITIES)
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {', '.join(MODALITIES)}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row:
                raise ValueError("not a JSON object with an id")
        except ValueError as e:
            _report(bad_input_log, where, f"bad manifest line ({e})")
            continue
        missing = [m for m in need if not row.get(m)]
        texts = {k: v for k, v in (row.get("texts") or {}).items() if isinstance(v, str) and (not langs or k in langs)}
        if missing or not texts:
            _report(bad_input_log, where, f"row {row['id']!r} has no {', '.join(missing) or 'description'}")
            continue
        out = {"id": str(row["id"]), "texts": texts, "attributes": dict(row.get("attributes") or {}),
               "stated": stated_attributes(row)}
        out.update({m: str(path.parent / row[m]) for m in MODALITIES if row.get(m)})
        rows.append(out)
    return rows


def _report(log_path: str | None, where: str, reason: str) -> None:
    log.warning("skipping %s: %s", where, reason)
    if log_path:
        append_jsonl(log_path, {"input": where, "reason": reason})


def stated_attributes(row: dict[str, Any]) -> list[str] | None:
    """The attributes a row's descriptions state (``corpus=music``'s ``meaning``: the genre and its ``facets``, the
    key as tonic and mode, the tempo as a word or a number); None when the row doesn't say."""
    meaning = row.get("meaning")
    if not isinstance(meaning, dict) or "facets" not in meaning:
        return None
    out = ["genre"]
    for facet in meaning["facets"]:
        if facet == "key":
            out += ["key", "mode"]
        elif facet == "tempo":
            out.append("tempo_word" if meaning.get("tempo_as") == "word" else "tempo")
        else:
            out.append(str(facet))
    return out


def description_fits(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether row ``a``'s descriptions also describe row ``b``'s tune (same stated attributes, or, without a
    ``meaning``, an identical description in some language)."""
    if a.get("stated") is not None:
        return all(b["attributes"].get(k) == a["attributes"].get(k) for k in a["stated"])
    return any(b["texts"].get(lang) == text for lang, text in a["texts"].items())


def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows to a batch of lists (the model reads the files)."""
    langs = sorted({lang for r in rows for lang in r["texts"]})
    batch: dict[str, Any] = {"ids": [r["id"] for r in rows], "attributes": [r["attributes"] for r in rows],
                             "texts": {lang: [r["texts"].get(lang) for r in rows] for lang in langs},
                             "fits": [[description_fits(a, b) for b in rows] for a in rows]}
    for m in MODALITIES:
        batch[m] = [r.get(m) for r in rows]
    return batch


class MusicDataModule(L.LightningDataModule):
    """Train/val/test rows of a music corpus, paired by the modalities a training stage needs."""

    def __init__(self, train_manifest: str, val_manifest: str, test_manifest: str | None = None,
                 extra_test: dict[str, str] | None = None, modalities: list[str] | tuple[str, ...] = ("abc", "midi"),
                 langs: list[str] | None = None, batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 bad_input_log: str | None = None, extra_train: list[str] | None = None, extra_train_repeat: int = 1):
        """
        Args:
            extra_test: more evaluation splits by name (``test_combo``: attribute combinations never trained on).
            extra_train: more training manifests, mixed into ``train_manifest``'s rows (``corpus=music_real``'s
                ``train_real.jsonl``: real tunes).
            extra_train_repeat: how many times each extra training row is seen per epoch (oversamples a small one).
            modalities: the files every row must have (``abc``, ``midi``, ``audio``).
            langs: description languages to use (None: all).
        """
        super().__init__()
        self.save_hyperparameters()
        self.hp: Any = self.hparams
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def model_kwargs(self) -> dict[str, Any]:
        """The model reads its tokenizer's training text from the config; nothing is needed from here."""
        return {}

    def manifest(self, stage: str) -> str:
        named = {"train": self.hp.train_manifest, "val": self.hp.val_manifest, "test": self.hp.test_manifest,
                 **dict(self.hp.extra_test or {})}
        if not named.get(stage):
            raise ValueError(f"no {stage} manifest configured (data.{stage}_manifest)")
        return str(named[stage])

    def rows(self, stage: str) -> list[dict[str, Any]]:
        """The usable rows of one split (``train``, ``val``, ``test`` or an ``extra_test`` name)."""
        if stage not in self._rows:
            need = tuple(self.hp.modalities)
            rows = read_rows(self.manifest(stage), need, self.hp.langs, self.hp.bad_input_log)
            if stage == "train":
                for extra in self.hp.get("extra_train") or []:
                    rows += read_rows(extra, need, self.hp.langs, self.hp.bad_input_log) * int(
                        self.hp.get("extra_train_repeat", 1))
            self._rows[stage] = rows
        return self._rows[stage]

    def loader(self, stage: str, train: bool = False) -> DataLoader:
        rows = self.rows(stage)
        if len(rows) < 2:
            raise ValueError(f"{self.manifest(stage)}: fewer than 2 usable rows")
        data: Any = rows  # a list serves as a map-style dataset
        return DataLoader(data, batch_size=self.hp.batch_size, shuffle=train, drop_last=train and len(rows) >
                          self.hp.batch_size, collate_fn=collate, num_workers=self.hp.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

"""Protocols of the deepfake corpus as files: ``protocols/<name>/{train,dev,test}.jsonl`` and ``protocol.json``.

Two training splits serve every protocol, so only two models need training:

- ``main`` trains on every language, voice, channel and source that isn't held out; ``lolo``, ``unseen_speaker``,
  ``unseen_channel`` and ``unseen_generator`` train on the same rows (``train_from: main``) and their test splits
  each change one factor.
- ``mono`` trains on one language (``mono_lang``); ``cross_lingual`` trains on the same rows and tests the other
  languages.

Closed-set test splits keep only sources seen in training; the open-set ``unseen_generator`` test mixes the main
test with the held-out generators, whose rows are the "unknown" class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.io import atomic_open, write_jsonl
from datamodules.corpus.deepfake_config import DeepfakeCorpusConfig

PROTOCOLS = ("main", "mono", "cross_lingual", "lolo", "unseen_speaker", "unseen_channel", "unseen_generator")


def _sel(rows: list[dict[str, Any]], role: str, split: str | None = None) -> list[dict[str, Any]]:
    return [r for r in rows if r["role"] == role and (split is None or r["split"] == split)]


def _known(rows: list[dict[str, Any]], train: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {r["source"] for r in train}
    return [r for r in rows if r["source"] in known]


def protocol_splits(rows: list[dict[str, Any]], cfg: DeepfakeCorpusConfig) -> dict[str, dict[str, Any]]:
    """Each protocol's train/dev/test rows and its description (rows carry ``role`` and ``split``)."""
    train, dev, test = (_sel(rows, "main", s) for s in ("train", "dev", "test"))
    mono = cfg.mono_lang

    def lang(rs: list[dict[str, Any]], keep: bool) -> list[dict[str, Any]]:
        return [r for r in rs if (r["lang"] == mono) == keep]

    mono_train = lang(train, True)
    # Every other language: its main test clips and the left-out languages' clips (they differ only in language too).
    other = lang(test, False) + _sel(rows, "lolo")
    other_langs = sorted({r["lang"] for r in other})
    specs: dict[str, dict[str, Any]] = {
        "main": dict(test=_known(test, train), held_out={}, task="closed_set", train_from="main",
                     description="every language, voice, channel and source that training sees; new sentences"),
        "mono": dict(train=mono_train, dev=lang(dev, True), test=_known(lang(test, True), mono_train), held_out={},
                     task="closed_set", train_from="mono", description=f"train and test in {mono} only"),
        "cross_lingual": dict(train=mono_train, dev=lang(dev, True), test=_known(other, mono_train),
                              held_out={"langs": other_langs}, task="closed_set", train_from="mono",
                              description=f"train in {mono}, test in the other languages (sources seen in {mono})"),
        "lolo": dict(test=_known(_sel(rows, "lolo"), train), held_out={"langs": list(cfg.heldout_langs)},
                     task="closed_set", train_from="main",
                     description="test in languages left out of training (their sources seen in other languages)"),
        "unseen_speaker": dict(test=_known(_sel(rows, "unseen_speaker"), train),
                               held_out={"speakers": list(cfg.heldout_speakers)}, task="closed_set",
                               train_from="main", description="test voices that training never hears"),
        "unseen_channel": dict(test=_known(_sel(rows, "unseen_channel"), train),
                               held_out={"channels": list(cfg.heldout_channels)}, task="closed_set",
                               train_from="main", description="test clips sent through a codec training never meets"),
        "unseen_generator": dict(test=_known(test, train) + _sel(rows, "unseen_generator"),
                                 held_out={"sources": list(cfg.heldout_sources)}, task="open_set", train_from="main",
                                 description="the main test plus generators never trained on: they are 'unknown'"),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        tr = spec.pop("train", train)
        dv = spec.pop("dev", dev)
        known = sorted({r["source"] for r in tr})
        out[name] = {"splits": {"train": tr, "dev": dv, "test": spec.pop("test")},
                     "protocol": {"name": name, **spec, "known_sources": known,
                                  "known_families": sorted({r["family"] for r in tr})}}
    return out


def write_protocols(root: Path, rows: list[dict[str, Any]], cfg: DeepfakeCorpusConfig,
                    left_out: dict[str, str]) -> dict[str, Any]:
    """Write every protocol under ``root/protocols``; returns the row counts per protocol and split.

    ``left_out`` names the sources the build could not render and why; each protocol.json repeats it.
    """
    summary: dict[str, Any] = {}
    for name, p in protocol_splits(rows, cfg).items():
        folder = root / "protocols" / name
        for split, split_rows in p["splits"].items():
            write_jsonl(folder / f"{split}.jsonl", [_public(r) for r in split_rows])
        meta = {**p["protocol"], "sources_left_out": left_out,
                "binary_available": any(r["source"] == "bonafide" for r in p["splits"]["train"])}
        with atomic_open(folder / "protocol.json", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, ensure_ascii=False)
        summary[name] = {s: len(v) for s, v in p["splits"].items()}
        if p["protocol"]["task"] == "open_set":
            known = set(meta["known_sources"])
            summary[name]["test_unknown"] = sum(r["source"] not in known for r in p["splits"]["test"])
    return summary


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """The manifest row without the builder's bookkeeping (role, split)."""
    return {k: v for k, v in row.items() if k not in ("role", "split")}

"""WebDataset tar shards for speech: a resumable writer, and a datamodule that streams them under DDP.

A shard folder holds

- ``shard-000000.tar`` ...: one sample per utterance, ``<key>.flac`` (or ``.wav``; 16 kHz mono 16-bit) and
  ``<key>.json`` (text, lang, speaker, duration, source path and the manifest's other fields);
- ``shard-000000.json`` ...: the shard's manifest rows, digest and sample metadata (resume, vocabulary);
- ``shards.json``: the index, with every shard's sample count and seconds, totals and skipped inputs.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from common.io import atomic_open
from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import read_manifest
from datamodules.speech import SpeechDataModule, SpeechDataset, collate_speech, report_bad
from speech.audio import SAMPLE_RATE, AudioError, load_audio
from text.char_vocab import CharVocab

log = logging.getLogger(__name__)

INDEX = "shards.json"
_SHARD = re.compile(r"^(?:\.)?shard-(\d{6})\.(?:tar|json|tar\.tmp)$")


# ---------------------------------------------------------------- writing


def _digest(rows: list[dict[str, Any]], audio_format: str) -> str:
    """Fingerprint of manifest rows as written (not their resolved paths) and the audio format."""
    h = hashlib.sha1(audio_format.encode())
    for r in rows:
        h.update(json.dumps({k: v for k, v in r.items() if k != "audio"}, sort_keys=True).encode())
    return h.hexdigest()


def _encode(row: dict[str, Any], audio_format: str) -> tuple[bytes, float] | str:
    """The row's audio as 16-bit ``audio_format`` bytes and its duration, or why it can't be used."""
    try:
        wave = load_audio(row["audio"])
    except AudioError as e:
        return e.reason
    buf = io.BytesIO()
    sf.write(buf, wave, SAMPLE_RATE, format=audio_format.upper(), subtype="PCM_16")
    return buf.getvalue(), len(wave) / SAMPLE_RATE


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a damaged file is an error naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable shard metadata ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: shard metadata must be a JSON object")
    return data


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, indent=1)


def _finished_shards(out: Path, rows: list[dict[str, Any]], shard_size: int, audio_format: str) -> list[dict[str, Any]]:
    """Sidecars of the leading shards that a previous run completed from these same rows and settings."""
    done: list[dict[str, Any]] = []
    start = 0
    for k in itertools.count():
        side = out / f"shard-{k:06d}.json"
        if not side.exists() or not (out / f"shard-{k:06d}.tar").exists():
            break
        try:
            meta = _read_json(side)
            a, b = meta["rows"]
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s: redoing this shard and the ones after it (%s)", side, e)
            break
        if (a != start or b > len(rows) or meta.get("shard_size") != shard_size
                or meta.get("audio_format") != audio_format or meta.get("digest") != _digest(rows[a:b], audio_format)):
            break
        done.append(meta)
        start = b
    return done


def write_shards(
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    shard_size: int = 1000,
    audio_format: str = "flac",
    workers: int = 0,
    bad_audio_log: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Pack a JSONL/TSV manifest into tar shards of ``shard_size`` usable utterances; returns the index.

    Unusable audio is skipped and reported (``bad_audio_log``, default ``<out_dir>/bad_inputs.jsonl``).
    Each shard is written under a temporary name and renamed when complete; a re-run keeps the leading
    shards made from the same manifest rows and settings and writes the rest.
    """
    if audio_format not in ("flac", "wav"):
        raise ValueError(f"audio_format must be flac or wav, got {audio_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bad_log = str(bad_audio_log or out / "bad_inputs.jsonl")
    rows = read_manifest(manifest)
    done = _finished_shards(out, rows, shard_size, audio_format)
    for p in out.iterdir():  # unfinished or stale shards from an earlier run
        m = _SHARD.match(p.name)
        if m and (int(m.group(1)) >= len(done) or p.name.endswith(".tmp")):
            p.unlink()
    start = done[-1]["rows"][1] if done else 0
    if done:
        log.info("%s: %d finished shard(s) kept, resuming at manifest row %d", out, len(done), start)

    todo = rows[start:]
    state: dict[str, Any] = {"start": start, "row": start, "samples": [], "skipped": []}

    def finish(tmp_name: str) -> None:
        """ShardWriter's hook once a shard is closed: publish it with its sidecar (an empty one is dropped)."""
        tmp = Path(tmp_name)
        if not state["samples"]:
            tmp.unlink()
            return
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        name = tmp.name[1 : -len(".tmp")]
        os.replace(tmp, out / name)
        a, b = state["start"], state["row"]
        meta = {"shard": name, "rows": [a, b], "shard_size": shard_size, "audio_format": audio_format,
                "digest": _digest(rows[a:b], audio_format),
                "seconds": round(sum(s["duration"] for s in state["samples"]), 3),
                "samples": state["samples"], "skipped": state["skipped"]}
        _write_json(out / name.replace(".tar", ".json"), meta)
        done.append(meta)
        state.update(start=b, samples=[], skipped=[])

    if todo:
        (out / INDEX).unlink(missing_ok=True)  # readers see no index until the new one is complete
        encode = partial(_encode, audio_format=audio_format)
        pool = multiprocessing.get_context("fork").Pool(workers) if workers > 0 else None
        encoded = pool.imap(encode, todo, chunksize=8) if pool else map(encode, todo)
        pattern = str(out).replace("%", "%%") + "/.shard-%06d.tar.tmp"
        writer = wds.ShardWriter(pattern, maxcount=shard_size, start_shard=len(done), post=finish, verbose=0,
                                 encoder=False, mtime=0.0)
        try:
            for i, (row, result) in enumerate(zip(todo, encoded), start=start):
                # A shard is closed (and ``finish`` called) when the first sample of the next one arrives.
                state["row"] = i
                if isinstance(result, str):
                    report_bad(bad_log, row["audio_raw"], result, "shards")
                    state["skipped"].append({"audio": row["audio_raw"], "reason": result})
                    continue
                audio, duration = result
                key = f"{i:09d}"
                info = {k: v for k, v in row.items() if k not in ("audio", "audio_raw")}
                info.update(duration=round(duration, 6), source=row["audio"])
                writer.write({"__key__": key, audio_format: audio,
                              "json": json.dumps(info, ensure_ascii=False).encode("utf-8")})
                state["samples"].append({"key": key, "text": row.get("text", ""), "lang": row.get("lang", "und"),
                                         "duration": info["duration"]})
            state["row"] = len(rows)
            writer.close()
        except BaseException:
            writer.post = None  # an interrupted shard stays a temporary file; the next run removes it
            writer.close()
            raise
        finally:
            if pool:
                pool.terminate()

    langs: dict[str, int] = {}
    for meta in done:
        for s in meta["samples"]:
            langs[s["lang"]] = langs.get(s["lang"], 0) + 1
    index = {
        "format": "webdataset", "audio_format": audio_format, "sample_rate": SAMPLE_RATE, "shard_size": shard_size,
        "manifest": str(manifest), "samples": sum(len(m["samples"]) for m in done),
        "seconds": round(sum(m["seconds"] for m in done), 3), "langs": dict(sorted(langs.items())),
        "shards": [{"url": m["shard"], "meta": m["shard"].replace(".tar", ".json"), "samples": len(m["samples"]),
                    "seconds": m["seconds"]} for m in done],
        "skipped": [s for m in done for s in m["skipped"]] + state["skipped"],
    }
    _write_json(out / INDEX, index)
    return index


# ---------------------------------------------------------------- reading


def read_index(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The folder and contents of a shard index (``path`` is the folder or its ``shards.json``)."""
    p = Path(path)
    index = p / INDEX if p.is_dir() or not p.suffix else p
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no shard index (write one with scripts/make_shards.py)")
    return index.parent, _read_json(index)


def split_by_rank(src: Iterable[Any], rank: int, world_size: int) -> Iterator[Any]:
    """WebDataset node splitter: every ``world_size``-th shard from ``rank``.

    The list is padded by cycling it to a multiple of ``world_size``, so every rank gets the same
    number of shards (and at least one) and only the padding is shared.
    """
    items = list(src)
    if world_size > 1 and items:
        n = math.ceil(len(items) / world_size) * world_size
        items = [items[i % len(items)] for i in range(n)]
    yield from items[rank::world_size]


class _ReportShardError:
    """WebDataset error handler: a missing or broken shard is reported, and reading goes on."""

    def __init__(self, bad_log: str | None, stage: str):
        self.bad_log, self.stage = bad_log, stage

    def __call__(self, exn: Exception) -> bool:
        # WebDataset appends the shard's URL to the exception's args.
        args = exn.args
        url = getattr(exn, "filename", None) or (args[-1] if len(args) > 1 and isinstance(args[-1], str) else None)
        what = exn.strerror if isinstance(exn, OSError) and exn.strerror else args[0] if args else exn
        report_bad(self.bad_log, str(url or "<shard>"), f"unreadable shard ({type(exn).__name__}: {what})", self.stage)
        return True


class ShardStream(IterableDataset):
    """Padded speech batches streamed from tar shards, each rank and DataLoader worker reading its own shards.

    Per pass: shards in an order fixed by (seed, epoch, pass) on every rank, split by rank (``split_by_rank``)
    and worker (``wds.split_by_worker``); samples through a shuffle buffer; then ``buffer_size`` samples at a
    time are cut into length-bucketed batches under ``max_batch_seconds`` (``DurationBatchSampler``) in
    shuffled order, decoded and padded. With ``batches_per_worker`` the passes repeat until each worker has
    yielded that many batches, so every rank steps equally often (DDP); without, one pass.
    Each ``__iter__`` is one epoch (workers must be persistent to keep the count).
    """

    def __init__(self, urls: list[str], vocab: CharVocab | None, max_batch_seconds: float,
                 max_batch_size: int | None = None, num_buckets: int = 10, buffer_size: int = 1000,
                 shuffle_buffer: int = 500, shuffle: bool = True, speed_perturb: list[float] | None = None,
                 min_seconds: float = 0.0, max_seconds: float = math.inf, rank: int = 0, world_size: int = 1,
                 seed: int = 0, epoch: int = 0, batches_per_worker: int | None = None, num_workers: int = 0,
                 bad_audio_log: str | None = None, stage: str = "train"):
        super().__init__()
        self.urls, self.vocab = list(urls), vocab
        self.max_batch_seconds, self.max_batch_size, self.num_buckets = max_batch_seconds, max_batch_size, num_buckets
        self.buffer_size, self.shuffle_buffer, self.shuffle = buffer_size, shuffle_buffer, shuffle
        self.speed_perturb, self.min_seconds, self.max_seconds = speed_perturb, min_seconds, max_seconds
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        self.batches_per_worker, self.num_workers = batches_per_worker, max(num_workers, 1)
        self.bad_audio_log, self.stage = bad_audio_log, stage

    def __len__(self) -> int:
        if self.batches_per_worker is None:
            raise TypeError("a single pass over shards has no known length")
        return self.batches_per_worker * self.num_workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, epoch, self.rank, info.id if info else 0])
        made = 0
        for p in itertools.count():
            before = made
            for batch in self._batches(self._samples(epoch, p, rng), rng):
                yield batch
                made += 1
                if self.batches_per_worker is not None and made >= self.batches_per_worker:
                    return
            if made == before:
                log.warning("rank %d: a pass over its shards gave no usable sample", self.rank)
                return
            if self.batches_per_worker is None:
                return

    def _samples(self, epoch: int, p: int, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        """Manifest-like rows whose ``audio`` is the encoded bytes, in streaming order."""
        urls = [self.urls[i] for i in np.random.default_rng([self.seed, epoch, p]).permutation(len(self.urls))] \
            if self.shuffle else self.urls
        ds = wds.WebDataset(urls, handler=_ReportShardError(self.bad_audio_log, self.stage), shardshuffle=False,
                            nodesplitter=partial(split_by_rank, rank=self.rank, world_size=self.world_size),
                            workersplitter=wds.split_by_worker, empty_check=False)
        if self.shuffle and self.shuffle_buffer > 1:
            ds = ds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, seed=int(rng.integers(2**31)))
        for s in ds:
            name = f"{s.get('__url__', '?')}:{s['__key__']}"
            audio = s.get("flac", s.get("wav"))
            try:
                meta = json.loads(s["json"])
            except (KeyError, ValueError) as e:
                report_bad(self.bad_audio_log, name, f"no readable metadata ({type(e).__name__}: {e})", self.stage)
                continue
            if audio is None:
                report_bad(self.bad_audio_log, name, "no audio in the sample", self.stage)
                continue
            duration = float(meta.get("duration", 0.0))
            if self.min_seconds <= duration <= self.max_seconds:  # the datamodule reports the others once
                yield {**meta, "audio": audio, "audio_raw": name, "duration": duration}

    def _batches(self, rows: Iterator[dict[str, Any]], rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        while buf := list(itertools.islice(rows, self.buffer_size)):
            for idx in self.cut([r["duration"] for r in buf], seed=int(rng.integers(2**31))):
                items = SpeechDataset([buf[i] for i in idx], self.vocab, self.speed_perturb, self.bad_audio_log,
                                      self.stage)  # decodes the bytes, reports what fails to decode
                batch = collate_speech([items[i] for i in range(len(idx))])
                if batch is not None:
                    yield batch

    def cut(self, durations: list[float], seed: int = 0) -> list[list[int]]:
        """One buffer's length-bucketed batches under ``max_batch_seconds``, shuffled when ``shuffle``."""
        buckets = max(1, min(self.num_buckets, len(durations)))
        return list(DurationBatchSampler(durations, self.max_batch_seconds, self.max_batch_size,
                                         num_buckets=buckets, shuffle=self.shuffle, seed=seed))

    def pass_batches(self, durations: list[float]) -> int:
        """About how many batches one pass over samples of these durations makes."""
        return sum(len(self.cut(durations[i : i + self.buffer_size]))
                   for i in range(0, len(durations), self.buffer_size))


class SpeechShardDataModule(SpeechDataModule):
    """``SpeechDataModule`` that trains from WebDataset shards (``train_shards``); dev and test stay manifests.

    The vocabulary and languages come from the shard sidecars (or ``vocab_path``), never the audio. An epoch
    is as many batches as the index's durations make, split over ranks; ``sorted_epochs`` does not apply.
    """

    def __init__(self, *args: Any, train_shards: str | None = None, buffer_size: int = 1000,
                 shuffle_buffer: int = 500, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters(logger=False)
        self._samples: list[dict[str, Any]] | None = None

    def shard_samples(self) -> list[dict[str, Any]]:
        """Metadata of the usable training samples (duration within bounds; the others reported once)."""
        if self._samples is None:
            if not self.hp.train_shards:
                raise ValueError("data.train_shards is not set")
            root, index = read_index(self.hp.train_shards)
            self._samples = []
            for shard in index["shards"]:
                meta = _read_json(root / shard["meta"])
                for s in meta["samples"]:
                    reason = self.duration_problem(s["duration"])
                    if reason:
                        report_bad(self.hp.bad_audio_log, f"{root / shard['url']}:{s['key']}", reason, "train")
                    else:
                        self._samples.append({**s, "url": str(root / shard["url"])})
        return self._samples

    def train_transcripts(self) -> list[dict[str, Any]]:
        """The shards' sample metadata (text, lang) from their sidecars: no audio is read."""
        return self.shard_samples()

    def train_stream(self, rank: int = 0, world_size: int = 1, epoch: int = 0) -> ShardStream:
        """The training stream of one rank, with an epoch length that every rank shares."""
        samples = self.shard_samples()
        urls = sorted({s["url"] for s in samples})
        if not urls:
            raise ValueError(f"{self.hp.train_shards}: no usable training samples")
        workers = min(self.hp.num_workers, math.ceil(len(urls) / world_size))
        hp = self.hp
        stream = ShardStream(
            urls, self.vocab, hp.max_batch_seconds, hp.max_batch_size, hp.num_buckets, hp.buffer_size,
            hp.shuffle_buffer, hp.shuffle, hp.speed_perturb, hp.min_seconds, hp.max_seconds, rank, world_size,
            hp.seed, epoch, num_workers=workers, bad_audio_log=hp.bad_audio_log, stage="train")
        batches = stream.pass_batches([s["duration"] for s in samples])
        stream.batches_per_worker = math.ceil(math.ceil(batches / world_size) / stream.num_workers)
        return stream

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        stream = self.train_stream(trainer.global_rank if trainer else 0, trainer.world_size if trainer else 1,
                                   trainer.current_epoch if trainer else 0)
        workers = stream.num_workers if self.hp.num_workers > 0 else 0
        return DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available())

"""datamodules.shards: WebDataset shards written from a manifest, streamed per rank and worker, trained on."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from torch.utils.data import DataLoader

import datamodules.shards as shards_mod
from common.io import read_jsonl_lenient
from common.runner import compose_and_run
from datamodules.manifest import read_manifest
from datamodules.shards import INDEX, ShardStream, SpeechShardDataModule, read_index, split_by_rank, write_shards
from datamodules.speech import SpeechDataModule
from speech.audio import SAMPLE_RATE, load_audio
from tests.helpers import ROOT, compose_cfg, load_script, tiny_overrides
from text.normalize import normalize_transcript


@pytest.fixture(scope="module")
def shard_dir(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus's 24 training utterances in 4 shards of 6."""
    out = tmp_path_factory.mktemp("shards")
    write_shards(tiny_corpus / "train.jsonl", out, shard_size=6)
    return out


def _urls(shard_dir: Path) -> list[str]:
    root, index = read_index(shard_dir)
    return [str(root / s["url"]) for s in index["shards"]]


def _stream(shard_dir: Path, **kw: Any) -> ShardStream:
    return ShardStream(_urls(shard_dir), None, **{"max_batch_seconds": 20.0, "speed_perturb": None, **kw})


def _keys(batches: list[dict[str, Any]]) -> list[str]:
    return [a.rsplit(":", 1)[1] for b in batches for a in b["audio"]]


def test_round_trip_equals_manifest_audio_and_text(tiny_corpus: Path, shard_dir: Path) -> None:
    rows = read_manifest(tiny_corpus / "train.jsonl")
    root, index = read_index(shard_dir)
    assert [s["samples"] for s in index["shards"]] == [6, 6, 6, 6] and index["samples"] == len(rows) == 24
    assert index["langs"] == {"deu_Latn": 12, "ukr_Cyrl": 12} and not index["skipped"]
    samples = list(wds.WebDataset(_urls(shard_dir), shardshuffle=False, empty_check=False))
    assert len(samples) == len(rows)
    total = 0.0
    for row, s in zip(rows, samples, strict=True):
        wave, sr = sf.read(io.BytesIO(s["flac"]), dtype="float32")
        assert sr == SAMPLE_RATE and sf.info(io.BytesIO(s["flac"])).subtype == "PCM_16"
        np.testing.assert_allclose(wave, load_audio(row["audio"]), atol=2 / 32768)
        meta = json.loads(s["json"])
        assert (meta["text"], meta["lang"], meta["speaker"]) == (row["text"], row["lang"], row["speaker"])
        assert meta["source"] == row["audio"] and meta["duration"] == pytest.approx(len(wave) / SAMPLE_RATE)
        total += meta["duration"]
    assert index["seconds"] == pytest.approx(total, abs=0.01)
    # Only finished files are left: no temporary names.
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []

    # The training stream gives the same audio, and the targets a manifest-built datamodule would.
    vocab = SpeechDataModule(train_manifest=str(tiny_corpus / "train.jsonl")).vocab
    seen = 0
    for batch in ShardStream(_urls(shard_dir), vocab, 20.0, speed_perturb=None):
        for i, name in enumerate(batch["audio"]):
            row = rows[int(name.rsplit(":", 1)[1])]
            n = int(batch["wave_lens"][i])
            np.testing.assert_allclose(batch["wave"][i, :n].numpy(), load_audio(row["audio"]), atol=2 / 32768)
            assert batch["texts"][i] == normalize_transcript(row["text"], row["lang"])
            assert batch["targets"][i, : batch["target_lens"][i]].tolist() == vocab.encode(batch["texts"][i])
            seen += 1
    assert seen == len(rows)


def test_bad_audio_is_skipped_and_reported(tiny_corpus: Path, tmp_path: Path) -> None:
    rows = read_manifest(tiny_corpus / "train.jsonl")[:4]
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notaudio.wav").write_bytes(b"this is not audio at all" * 20)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    lines = [{"audio": r["audio"], "text": r["text"], "lang": r["lang"]} for r in rows]
    lines[1:1] = [{"audio": n, "text": "kaputt", "lang": "deu_Latn"}
                  for n in ("empty.wav", "notaudio.wav", "silent.wav", "missing.wav")]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    index = compose_and_run("make_shards", [f"manifest={tmp_path / 'm.jsonl'}", f"output={tmp_path / 'out'}",
                                            "shard_size=3", "format=wav"], load_script("make_shards").run)
    reasons = {s["audio"]: s["reason"] for s in index["skipped"]}
    assert set(reasons) == {"empty.wav", "notaudio.wav", "silent.wav", "missing.wav"}
    assert "empty" in reasons["empty.wav"] and "not found" in reasons["missing.wav"]
    assert "silent" in reasons["silent.wav"] and "unreadable" in reasons["notaudio.wav"]
    logged = {r["audio"]: r["reason"] for r in read_jsonl_lenient(tmp_path / "out" / "bad_inputs.jsonl")}
    assert logged == reasons
    assert [s["samples"] for s in index["shards"]] == [3, 1] and index["samples"] == 4
    stream = ShardStream(_urls(tmp_path / "out"), None, 1000.0, speed_perturb=None)
    assert len(_keys(list(stream))) == 4  # WAV shards stream like FLAC ones


def test_rerun_resumes_and_skips_finished_shards(tiny_corpus: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    real_encode = shards_mod._encode
    calls: list[str] = []
    kill_at = [15]  # the job dies while the third shard is half written

    def encode(row: dict[str, Any], audio_format: str) -> Any:
        calls.append(row["audio_raw"])
        if len(calls) == kill_at[0]:
            kill_at[0] = -1
            raise RuntimeError("killed")
        return real_encode(row, audio_format)

    monkeypatch.setattr(shards_mod, "_encode", encode)
    with pytest.raises(RuntimeError, match="killed"):
        write_shards(tiny_corpus / "train.jsonl", out, shard_size=6)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "shard-000000.json", "shard-000000.tar", "shard-000001.json", "shard-000001.tar"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}

    calls.clear()
    index = write_shards(tiny_corpus / "train.jsonl", out, shard_size=6)
    assert len(calls) == 12  # only the last two shards' rows are loaded again
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in out.glob("shard-00000[01].*"))
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    reference = write_shards(tiny_corpus / "train.jsonl", tmp_path / "straight", shard_size=6)
    assert index["shards"] == reference["shards"] and index["samples"] == 24
    for name in ("shard-000002.tar", "shard-000003.tar"):  # byte-identical to an uninterrupted run
        assert (out / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()

    calls.clear()
    assert write_shards(tiny_corpus / "train.jsonl", out, shard_size=6) == index and calls == []
    # Another shard size is other work: nothing is kept.
    write_shards(tiny_corpus / "train.jsonl", out, shard_size=8)
    assert len(calls) == 24 and json.loads((out / INDEX).read_text())["shard_size"] == 8
    assert not (out / "shard-000003.tar").exists()


def test_broken_manifest_index_and_sidecars_are_clear(tiny_corpus: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    rows = [json.dumps({"audio": r["audio"], "text": r["text"], "lang": r["lang"]})
            for r in read_manifest(tiny_corpus / "train.jsonl")]
    manifest.write_text("\n".join([rows[0], "{not json", *rows[1:4]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{manifest}:2"):
        write_shards(manifest, tmp_path / "out")
    assert not (tmp_path / "out" / INDEX).exists()
    with pytest.raises(FileNotFoundError, match="no shard index"):
        read_index(tmp_path / "nowhere")
    out = tmp_path / "good"
    manifest.write_text("\n".join(rows[:6]) + "\n", encoding="utf-8")
    first = write_shards(manifest, out, shard_size=2)
    # A damaged sidecar is redone on the next run, from that shard on; the earlier shards are kept.
    (out / "shard-000001.json").write_text("{torn", encoding="utf-8")
    kept = (out / "shard-000000.tar").stat().st_mtime_ns
    assert write_shards(manifest, out, shard_size=2)["shards"] == first["shards"]
    assert (out / "shard-000000.tar").stat().st_mtime_ns == kept
    # A damaged index or sidecar at training time is an error naming the file.
    (out / "shard-000002.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"shard-000002\.json"):
        SpeechShardDataModule(train_shards=str(out)).shard_samples()
    (out / INDEX).write_text("{torn", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(INDEX)):
        read_index(out)


def test_batches_respect_max_batch_seconds(shard_dir: Path) -> None:
    for cap, size in [(12.0, None), (30.0, 4)]:
        batches = list(_stream(shard_dir, max_batch_seconds=cap, max_batch_size=size, buffer_size=10))
        for b in batches:
            padded = b["wave"].shape[0] * b["wave"].shape[1] / SAMPLE_RATE
            assert padded <= cap + 1e-6 or len(b["texts"]) == 1, (padded, cap)
            assert size is None or len(b["texts"]) <= size
            assert b["targets"].shape[0] == len(b["texts"]) and b["wave_lens"].max() == b["wave"].shape[1]
        assert sorted(_keys(batches)) == [f"{i:09d}" for i in range(24)]


def test_ranks_and_workers_read_disjoint_shards(shard_dir: Path) -> None:
    per_rank = [_keys(list(_stream(shard_dir, rank=r, world_size=2, seed=3))) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == [f"{i:09d}" for i in range(24)]
    # Two DataLoader workers of one rank split its shards between them.
    loader = DataLoader(_stream(shard_dir, rank=1, world_size=2, seed=3), batch_size=None, num_workers=2)
    assert sorted(_keys(list(loader))) == sorted(per_rank[1])
    # An odd shard count is padded so that every rank gets as many shards; only the padding repeats.
    for n, world in [(5, 2), (7, 3), (1, 4)]:
        split = [list(split_by_rank(range(n), r, world)) for r in range(world)]
        assert len({len(s) for s in split}) == 1 and set().union(*split) == set(range(n))
        assert sum(map(len, split)) - n < world


def test_every_rank_steps_equally_and_epochs_reshuffle(tiny_corpus: Path, shard_dir: Path, tmp_path: Path) -> None:
    uneven = tmp_path / "uneven"  # 3 shards of 10, 10 and 4 utterances: the two ranks hold different amounts
    write_shards(tiny_corpus / "train.jsonl", uneven, shard_size=10)
    dm = SpeechShardDataModule(train_shards=str(uneven), max_batch_seconds=15.0, num_workers=0, seed=1,
                               speed_perturb=None, buffer_size=8)
    streams = [dm.train_stream(rank=r, world_size=2) for r in range(2)]
    assert len(streams[0]) == len(streams[1]) > 0
    for s in streams:
        epoch0, epoch1 = _keys(list(s)), _keys(list(s))
        assert len(list(s)) == len(s)
        assert epoch0 != epoch1
    # Persistent workers keep counting epochs: a new iterator is a new shuffle.
    loader = DataLoader(dm.train_stream(rank=1, world_size=2), batch_size=None, num_workers=1,
                        persistent_workers=True)
    epoch0, epoch1 = _keys(list(loader)), _keys(list(loader))
    assert len(epoch0) > 0 and epoch0 != epoch1
    whole = SpeechShardDataModule(train_shards=str(shard_dir), max_batch_seconds=1000.0, num_workers=0,
                                  speed_perturb=None, shuffle=False).train_stream()
    assert sorted(_keys(list(whole))) == [f"{i:09d}" for i in range(24)]


def test_corrupt_sample_and_missing_shard_are_skipped(shard_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar"
    with wds.TarWriter(str(broken), encoder=False) as tw:
        tw.write({"__key__": "bad", "flac": b"not flac at all" * 10,
                  "json": json.dumps({"text": "x", "lang": "deu_Latn", "duration": 1.0}).encode()})
        tw.write({"__key__": "nojson", "flac": b"x"})
    log = tmp_path / "bad.jsonl"
    stream = ShardStream([*_urls(shard_dir), str(broken), str(tmp_path / "missing.tar")], None, 1000.0,
                         speed_perturb=None, bad_audio_log=str(log), shuffle=False)
    assert sorted(_keys(list(stream))) == [f"{i:09d}" for i in range(24)]
    reasons = {r["audio"]: r["reason"] for r in read_jsonl_lenient(log)}
    assert "unreadable audio" in reasons[f"{broken}:bad"] and "metadata" in reasons[f"{broken}:nojson"]
    assert "unreadable shard" in reasons[str(tmp_path / "missing.tar")]


def test_vocabulary_from_the_index_equals_the_manifests(tiny_corpus: Path, shard_dir: Path) -> None:
    shards = SpeechShardDataModule(train_shards=str(shard_dir))
    manifest = SpeechDataModule(train_manifest=str(tiny_corpus / "train.jsonl"))
    assert shards.vocab.tokens == manifest.vocab.tokens and shards.vocab.lang_chars == manifest.vocab.lang_chars
    assert shards.langs() == manifest.langs()


def test_train_fast_dev_run_on_shards(tiny_corpus: Path, shard_dir: Path, tmp_path: Path) -> None:
    tiny = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("data.train_manifest")]
    cfg = compose_cfg("train", ["experiment=asr_lowres", "data=speech_shards", f"data.train_shards={shard_dir}",
                                "debug=fdr", *tiny], tmp_path)
    assert cfg.data._target_ == "datamodules.shards.SpeechShardDataModule" and cfg.data.max_batch_seconds == 80
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_on_shards(tiny_corpus: Path, shard_dir: Path, tmp_path: Path) -> None:
    tiny = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("data.train_manifest")]
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=asr_lowres", "data=speech_shards",
           f"data.train_shards={shard_dir}", *tiny, "data.num_workers=2", "data.max_batch_seconds=20",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=2", "threads=1",
           f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # Its own process group, so that a stuck run takes its second rank and DataLoader workers with it.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("DDP training on shards did not finish in 300 s:\n" + out[-3000:])
    assert proc.returncode == 0, out[-3000:]
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()

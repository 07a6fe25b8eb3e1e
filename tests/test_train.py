"""End to end on a tiny corpus: train -> export -> transcribe, interrupt -> resume, bad files in training."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from common.io import read_jsonl_lenient
from common.runner import compose_and_run
from speech.asr.batch import collect_inputs, transcribe_to_file
from speech.asr.infer import Transcriber
from tests.helpers import CrashAt, compose_cfg, load_script, tiny_overrides

DETERMINISTIC = [
    "data.shuffle=false", "data.speed_perturb=null", "model.specaug.freq_masks=0", "model.specaug.time_masks=0",
    "model.encoder.dropout=0.0", "data.max_batch_size=6", "data.max_batch_seconds=1000", "data.num_buckets=1",
    "trainer.limit_val_batches=0", "callbacks.early_stopping=null", "test=false", "trainer.gradient_clip_val=1.0",
]


def _train(overrides: list[str], out: Path, extra_callbacks: list | None = None) -> dict[str, float]:
    train = load_script("train")
    cfg = compose_cfg("train", overrides, out)
    if extra_callbacks:
        from common import runner

        orig = runner.callbacks
        runner.callbacks = lambda c: orig(c) + extra_callbacks  # type: ignore[assignment]
        try:
            return train.train(cfg)
        finally:
            runner.callbacks = orig  # type: ignore[assignment]
    return train.train(cfg)


def test_train_export_transcribe(tiny_corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    metrics = _train([*tiny_overrides(tiny_corpus), "trainer.max_epochs=2", "logger=default"], out)
    assert "test/cer" in metrics and 0.0 <= metrics["test/cer"] <= 5.0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "val_deu_Latn/cer" in (out / "csv" / "metrics.csv").read_text().splitlines()[0]
    model_dir = out / "model"
    assert {p.name for p in model_dir.iterdir()} >= {"config.json", "model.safetensors", "vocab.json"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["export_dir"] == str(model_dir)

    # The exported directory and the checkpoint give the same network.
    from_dir = Transcriber.from_pretrained(model_dir)
    from_ckpt = Transcriber.from_pretrained(saved["best_checkpoint"])
    for k, v in from_dir.model.state_dict().items():
        torch.testing.assert_close(v, from_ckpt.model.state_dict()[k])

    rows = [json.loads(line) for line in (tiny_corpus / "test.jsonl").read_text().splitlines()]
    output = tmp_path / "hyp.jsonl"
    report = transcribe_to_file(from_dir, collect_inputs(tiny_corpus / "test.jsonl"), output, progress=False)
    hyps = read_jsonl_lenient(output)
    assert report.done == len(rows) and not report.failed
    assert [h["audio"] for h in hyps] == [r["audio"] for r in rows]
    assert all({"audio", "text", "lang", "duration"} <= h.keys() for h in hyps)
    assert [h["lang"] for h in hyps] == [r["lang"] for r in rows]

    # eval.py on the checkpoint reproduces the test CER that training reported.
    ev = compose_cfg("eval", [*tiny_overrides(tiny_corpus)[:5], "logger=csv", f"ckpt_path={saved['best_checkpoint']}"],
                     tmp_path / "eval")
    assert load_script("eval").evaluate(ev)["test/cer"] == pytest.approx(metrics["test/cer"], abs=1e-6)

    # tune_decode_hop.py picks the log-mel hop with the lowest dev CER and stores it in config.json.
    hop = compose_and_run("tune_decode_hop", [f"model={model_dir}", f"dev={tiny_corpus}/dev.jsonl",
                                              "hops_ms=[10,8]"], load_script("tune_decode_hop").run)
    assert hop in (10.0, 8.0) and json.loads((model_dir / "config.json").read_text())["decode_hop_ms"] == hop
    assert Transcriber.from_pretrained(model_dir).frame_seconds == pytest.approx(0.004 * hop)

    # Rows it cannot tune on are skipped with their reason; a row without a language still counts.
    from speech.asr.tuning import manifest_audio
    odd = tmp_path / "odd_dev.jsonl"
    odd.write_text("".join(json.dumps(r) + "\n" for r in [
        {"audio": str(tiny_corpus / rows[0]["audio"]), "text": rows[0]["text"]},
        {"audio": str(tiny_corpus / rows[1]["audio"]), "text": "", "lang": rows[1]["lang"]},
        {"audio": str(tmp_path / "gone.wav"), "text": "x", "lang": rows[1]["lang"]}]))
    with caplog.at_level(logging.WARNING, logger="speech.asr.tuning"):
        kept = manifest_audio(str(odd))
    assert [r["text"] for r, _ in kept] == [rows[0]["text"]]
    assert "no transcript" in caplog.text and "gone.wav" in caplog.text
    assert compose_and_run("tune_decode_hop", [f"model={model_dir}", f"dev={odd}", "save=false"],
                           load_script("tune_decode_hop").run) > 0

    # build_lm.py fits character LMs on the training text and stores them with the model.
    compose_and_run("build_lm", [f"model={model_dir}", f"train={tiny_corpus}/train.jsonl",
                                 f"dev={tiny_corpus}/dev.jsonl", "kenlm=true"], load_script("build_lm").run)
    assert (model_dir / "char_lms.json").exists()
    assert Transcriber.from_pretrained(model_dir).lms is not None
    # ... and word-level KenLM models for decoder=kenlm.
    assert (model_dir / "kenlm.json").exists()
    words = Transcriber.from_pretrained(model_dir, decoder="kenlm")
    assert len(words.transcribe([tiny_corpus / r["audio"] for r in rows[:3]], lang=rows[0]["lang"])) == 3

    # score.py on the transcripts agrees with the model's own test metric.
    scores = load_script("score").score(str(output))
    assert scores["all"]["cer"] == pytest.approx(metrics["test/cer"], abs=1e-6)


def _final_state(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def test_interrupt_then_resume_matches_uninterrupted(tiny_corpus: Path, tmp_path: Path) -> None:
    # 24 training utterances in batches of 6: epochs of 4 steps; checkpoints every 4 steps.
    base = [*tiny_overrides(tiny_corpus), *DETERMINISTIC, "trainer.max_steps=8", "trainer.max_epochs=-1",
            "callbacks.model_checkpoint.every_n_train_steps=4", "callbacks.model_checkpoint.monitor=null",
            "callbacks.lr_monitor=null"]
    straight = tmp_path / "straight"
    _train(base, straight)

    resumed = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="simulated interruption"):
        _train(base, resumed, extra_callbacks=[CrashAt(6)])
    last = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4

    # A fresh start in a folder with checkpoints is refused rather than overwriting them.
    with pytest.raises(SystemExit, match="ckpt_path=last"):
        _train(base, resumed)
    _train([*base, "ckpt_path=last"], resumed)
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    ref = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == ref["global_step"] == 8
    assert final["lr_schedulers"][0]["last_epoch"] == ref["lr_schedulers"][0]["last_epoch"]
    assert final["lr_schedulers"][0]["_last_lr"] == pytest.approx(ref["lr_schedulers"][0]["_last_lr"])
    a, b = _final_state(resumed), _final_state(straight)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)


def test_training_skips_and_reports_bad_files(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    lines = (corpus / "train.jsonl").read_text().splitlines()
    bad = {
        "empty.wav": b"",
        "notaudio.wav": b"this is not audio at all" * 20,
        "truncated.wav": (corpus / json.loads(lines[0])["audio"]).read_bytes()[:30],
    }
    for name, data in bad.items():
        (corpus / name).write_bytes(data)
    sf.write(corpus / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    sf.write(corpus / "nan.wav", np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    entries = [{"audio": n, "text": "kaputt", "lang": "deu_Latn", "duration": 1.0}
               for n in [*bad, "silent.wav", "nan.wav"]]
    entries.append({"audio": "missing.wav", "text": "fehlt", "lang": "deu_Latn"})
    (corpus / "train.jsonl").write_text("\n".join(lines + [json.dumps(e) for e in entries]) + "\n")

    out = tmp_path / "run"
    _train([*tiny_overrides(corpus), "trainer.max_epochs=1", "test=false"], out)
    assert (out / "model" / "model.safetensors").exists()
    logged = {r["audio"]: r["reason"] for r in read_jsonl_lenient(out / "bad_inputs.jsonl")}
    assert set(logged) == {*bad, "silent.wav", "nan.wav", "missing.wav"}
    assert "not found" in logged["missing.wav"] and "silent" in logged["silent.wav"]
    assert "NaN" in logged["nan.wav"] and "empty" in logged["empty.wav"]

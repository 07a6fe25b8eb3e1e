"""Sentence encoder end to end on a tiny corpus: the real config trains, exports, evaluates and embeds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from common.io import read_jsonl_lenient
from tests.helpers import compose_cfg, load_script
from tests.test_text_towers import _tokenizer
from tests.text_data import write_tiny_corpus
from text.towers import detect_tower_kind

TINY = ["+model.encoder.d_model=32", "+model.encoder.num_heads=2", "+model.encoder.ffn_dim=64",
        "+model.encoder.embed_dim=16", "data.vocab_size=300", "data.batch_size=16"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny models run several times faster than with two on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("textcorpus"))


def _overrides(corpus: Path) -> list[str]:
    p = corpus / "parallel"
    return [
        "experiment=text_encoder", f"data.train_manifest={p}/train.jsonl", f"data.val_manifest={p}/dev.jsonl",
        f"data.test_manifest={p}/test.jsonl", f"data.mono_dir={corpus}/mono", "logger=csv",
        "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", *TINY,
        "trainer.precision=32-true",  # training-time xsim is compared with the fp32 evaluation of the export
    ]


def test_fast_dev_run(corpus: Path, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [*_overrides(corpus), "debug=fdr"], tmp_path)
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and 0.0 <= metrics["val/xsim"] <= 1.0
    assert (tmp_path / "tokenizer.model").is_file()


def test_train_export_eval_embed(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = compose_cfg("train", [*_overrides(corpus), "trainer.max_steps=150", "trainer.val_check_interval=75",
                                "model.warmup_steps=5", "model.lr=3e-3", "model.encoder.dropout=0.0"], run)
    metrics = load_script("train").train(cfg)
    assert {"val/xsim", "test/xsim", "test_tur_Latn/xsim"} <= metrics.keys()
    assert metrics["test/xsim"] < 0.75  # chance is 1 - 1/24 = 0.96; 150 steps of a 32-wide model on 120 meanings
    model_dir = run / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "sentence_encoder" and config["held_out"] == ["tur_Latn"]
    assert "tur_Latn" not in config["langs"] and {p.name for p in model_dir.iterdir()} >= {"tokenizer.model",
                                                                                          "model.safetensors"}

    ev = compose_cfg("eval", [*_overrides(corpus)[:6], "logger=csv", f"ckpt_path={model_dir}"], tmp_path / "eval")
    figures = load_script("eval").evaluate(ev)
    assert figures["mean_xsim_trained"] == pytest.approx(metrics["test/xsim"], abs=1e-6)
    saved = json.loads((tmp_path / "eval" / "xsim.json").read_text())
    assert set(saved["xsim_error"]) == {"deu_Latn", "eng_Latn", "tur_Latn", "ukr_Cyrl"}
    assert saved["held_out"] == ["tur_Latn"] and (tmp_path / "eval" / "xsim.png").stat().st_size > 1000
    assert 0.0 <= saved["search_recall"]["eng_Latn"]["deu_Latn"]["recall@1"] <= 1.0

    lines = (corpus / "parallel" / "test.deu_Latn.txt").read_text(encoding="utf-8").splitlines()[:7]
    inp, out = tmp_path / "in.txt", tmp_path / "emb.npy"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = load_script("embed_text").main([f"model={model_dir}", f"input={inp}", f"output={out}", "batch_size=3"])
    saved_rows = np.load(out)
    assert saved_rows.shape == (7, 16) and saved_rows.dtype == np.float32 and np.array_equal(saved_rows, rows)
    np.testing.assert_allclose(np.linalg.norm(saved_rows, axis=1), 1.0, atol=1e-5)
    single = tmp_path / "one.txt"
    single.write_text(lines[4] + "\n", encoding="utf-8")
    one = load_script("embed_text").main([f"model={model_dir}", f"input={single}", f"output={tmp_path / 'one.npy'}"])
    np.testing.assert_allclose(one[0], saved_rows[4], atol=1e-5)


def test_embed_text_hf_encoder_and_errors(tmp_path: Path) -> None:
    tok = _tokenizer("<s> $A </s>", with_pad=True)
    torch.manual_seed(0)
    enc = XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=3, type_vocab_size=1,
    ))
    enc.save_pretrained(tmp_path / "xlmr")
    tok.save_pretrained(tmp_path / "xlmr")
    script = load_script("embed_text")
    assert detect_tower_kind(tmp_path / "xlmr") == "hf_encoder"
    inp = tmp_path / "in.txt"
    inp.write_text("the cat sat on the mat\na dog runs in the park\nпривіт світ\n", encoding="utf-8")
    rows = script.main([f"model={tmp_path / 'xlmr'}", f"input={inp}", f"output={tmp_path / 'e.npy'}"])
    assert rows.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)

    # An empty line is a reported bad item (exit code 3), not the end of the job: the other lines are embedded.
    inp.write_text("the cat\n\na dog\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        script.main([f"model={tmp_path / 'xlmr'}", f"input={inp}", f"output={tmp_path / 'bad.npy'}"])
    assert exit_info.value.code == 3
    (failed,) = read_jsonl_lenient(tmp_path / "bad.npy.failed.jsonl")
    assert failed["id"] == "2" and failed["reason"] == f"{inp}:2: empty line"
    assert (tmp_path / "bad.ids.txt").read_text().split() == ["1", "3"]
    (tmp_path / "two.txt").write_text("the cat\na dog\n", encoding="utf-8")
    two = script.main([f"model={tmp_path / 'xlmr'}", f"input={tmp_path / 'two.txt'}", f"output={tmp_path / 'two.npy'}"])
    np.testing.assert_allclose(np.load(tmp_path / "bad.npy"), two, atol=1e-6)
    with pytest.raises(SystemExit, match=r"no config\.json"):
        script.main([f"model={tmp_path}", f"input={inp}", f"output={tmp_path / 'bad.npy'}"])

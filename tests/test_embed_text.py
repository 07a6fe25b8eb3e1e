"""scripts/embed_text.py on the batch-job engine: manifest input, resume, bad items, exit code; tower kind detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from common import runner
from common.io import read_jsonl_lenient
from tests.helpers import ROOT, load_script
from tests.test_text_towers import _tokenizer
from text.towers import TEXT_TOWERS, HFTextEncoder, LLMEmbedder, SentenceEncoderTower, detect_tower_kind


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = _tokenizer("<s> $A </s>", with_pad=True)
    torch.manual_seed(0)
    enc = XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=3, type_vocab_size=1,
    ))
    path = tmp_path_factory.mktemp("towers") / "xlmr"
    enc.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_kind_comes_from_the_registered_towers() -> None:
    assert TEXT_TOWERS.get("hf_encoder") is HFTextEncoder and TEXT_TOWERS.get("llm_embedder") is LLMEmbedder
    llama = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
    bert = {"model_type": "bert", "architectures": ["BertModel"]}
    own = {"model_type": "sentence_encoder", "embed_dim": 16}
    assert [k for k in TEXT_TOWERS if TEXT_TOWERS.get(k).recognises(llama)] == ["llm_embedder"]
    assert [k for k in TEXT_TOWERS if TEXT_TOWERS.get(k).recognises(bert)] == ["hf_encoder"]
    assert [k for k in TEXT_TOWERS if TEXT_TOWERS.get(k).recognises(own)] == ["sentence_encoder"]


def test_detect_names_the_file_when_no_kind_or_several_recognise_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my_own_thing"}))
    with pytest.raises(ValueError, match=r"config\.json \(model_type 'my_own_thing'\): no text tower kind"):
        detect_tower_kind(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "sentence_encoder"}))
    assert detect_tower_kind(tmp_path) == "sentence_encoder"

    class Twin(SentenceEncoderTower):
        """A second kind claiming the same directories."""

    monkeypatch.setitem(TEXT_TOWERS.entries, "twin", Twin)
    with pytest.raises(ValueError, match=r"several kinds recognise it \(sentence_encoder, twin\)"):
        detect_tower_kind(tmp_path)
    (tmp_path / "config.json").write_text("{torn")
    with pytest.raises(ValueError, match="not valid JSON"):
        detect_tower_kind(tmp_path)


def test_manifest_input_languages_and_resume(xlmr: Path, tmp_path: Path) -> None:
    script = load_script("embed_text")
    m = tmp_path / "texts.jsonl"
    rows = [{"id": "cat", "text": "the cat sat on the mat"}, {"id": 2, "text": "a dog runs", "lang": "eng_Latn"},
            {"id": "bad", "text": "x", "lang": 5}, {"id": "ukr", "text": "привіт світ"}]
    m.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{torn\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    argv = [f"model={xlmr}", f"input={m}", f"output={out}", "batch_size=2", "progress=false"]
    emb, report = runner.compose_and_run("embed_text", argv, script.run)
    assert report.done == 3 and report.exit_code == 3
    assert (tmp_path / "emb.ids.txt").read_text().split() == ["cat", "2", "ukr"]
    assert emb.shape == (3, 32) and np.array_equal(np.load(out), emb)
    failed = {f["id"]: f["reason"] for f in read_jsonl_lenient(tmp_path / "emb.npy.failed.jsonl")}
    assert set(failed) == {"bad", f"{m}:5"} and "'lang'" in failed["bad"] and "invalid JSON" in failed[f"{m}:5"]
    # The same vectors as a plain text file of the good lines gives (ids are then line numbers).
    txt = tmp_path / "good.txt"
    txt.write_text("the cat sat on the mat\na dog runs\nпривіт світ\n", encoding="utf-8")
    plain = script.main([f"model={xlmr}", f"input={txt}", f"output={tmp_path / 'plain.npy'}", "progress=false"])
    np.testing.assert_allclose(plain, emb, atol=1e-6)
    assert (tmp_path / "plain.ids.txt").read_text().split() == ["1", "2", "3"]

    # A re-run embeds nothing again and keeps the rows; a longer manifest embeds only the new row.
    again, report = runner.compose_and_run("embed_text", argv, script.run)
    assert report.done == 0 and report.skipped_existing == 3 and np.array_equal(again, emb)
    m.write_text(m.read_text(encoding="utf-8").replace("{torn\n", json.dumps({"id": "new", "text": "a cat"}) + "\n"),
                 encoding="utf-8")
    more, report = runner.compose_and_run("embed_text", argv, script.run)
    assert report.done == 1 and report.skipped_existing == 3 and np.array_equal(more[:3], emb)


def test_cli_exit_code_and_bad_arguments(xlmr: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_text("the cat\n\na dog\n", encoding="utf-8")
    cmd = [sys.executable, str(ROOT / "scripts" / "embed_text.py"), f"model={xlmr}", f"input={inp}",
           f"output={tmp_path / 'e.npy'}", "progress=false"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"{inp}:2: empty line" in proc.stderr and np.load(tmp_path / "e.npy").shape == (2, 32)
    script = load_script("embed_text")
    with pytest.raises(SystemExit, match="input=, output= required"):
        script.main([f"model={xlmr}"])
    with pytest.raises(SystemExit, match="colour"):
        script.main([f"model={xlmr}", f"input={inp}", f"output={tmp_path / 'x.npy'}", "colour=red"])
    with pytest.raises(SystemExit, match="kind=clip: unknown text tower kind"):
        script.main([f"model={xlmr}", f"input={inp}", f"output={tmp_path / 'x.npy'}", "kind=clip"])
    with pytest.raises(SystemExit, match="input not found"):
        script.main([f"model={xlmr}", f"input={tmp_path / 'none.txt'}", f"output={tmp_path / 'x.npy'}"])

"""transcribe.py model=<transformers Wav2Vec2ForCTC dir>: detected, converted once into the cache, reused."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import soundfile as sf

from common.io import read_jsonl_lenient
from common.runner import compose_and_run
from speech.asr.foreign import foreign_kind, suite_model_dir
from speech.asr.hub import save_pretrained
from speech.asr.infer import Transcriber, load_transcriber
from speech.asr.interop import fairseq2 as fs2
from speech.asr.interop.hf import load_hf
from tests.helpers import load_script
from tests.test_hf_import_shapes import base_960h, build, waves
from tests.test_wav2vec2_interop import _fairseq2_config, _fairseq2_state


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hf") / "w2v"
    build(base_960h(), d)
    return d


@pytest.fixture()
def audio(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for i, w in enumerate(waves()):
        sf.write(d / f"w{i}.wav", w, 16000, subtype="FLOAT")
    return d


def test_transcribe_converts_once_and_matches_importing_first(hf_dir: Path, audio: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    imported = save_pretrained(*load_hf(hf_dir), tmp_path / "imported")
    files = sorted(audio.iterdir())
    expected = Transcriber.from_pretrained(imported).transcribe([str(f) for f in files])
    assert any(expected), "the tiny model should say something"

    run, cache = load_script("transcribe").run, tmp_path / "cache"
    keys = [f"model={hf_dir}", f"input={audio}", "progress=false", "num_workers=0", f"cache_dir={cache}"]
    with caplog.at_level(logging.INFO, logger="speech.asr.foreign"):
        assert compose_and_run("transcribe", [*keys, f"output={tmp_path / 'a.jsonl'}"], run) == 0
    assert "converted the transformers checkpoint" in caplog.text
    (entry,) = [p for p in cache.iterdir()]  # one finished entry, no temp folder left behind
    assert json.loads((entry / "config.json").read_text())["model_type"] == "ctc_wav2vec2"
    stamp = entry.stat().st_mtime_ns
    rows = {Path(r["audio"]).name: r["text"] for r in read_jsonl_lenient(tmp_path / "a.jsonl")}
    assert rows == {f.name: t for f, t in zip(files, expected)}

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="speech.asr.foreign"):
        assert compose_and_run("transcribe", [*keys, f"output={tmp_path / 'b.jsonl'}"], run) == 0
    assert "converted earlier" in caplog.text and "converted the" not in caplog.text
    assert [p for p in cache.iterdir()] == [entry] and entry.stat().st_mtime_ns == stamp
    assert read_jsonl_lenient(tmp_path / "b.jsonl") == read_jsonl_lenient(tmp_path / "a.jsonl")


def test_a_changed_source_is_converted_again_and_suite_dirs_pass_through(hf_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "copy"
    src.mkdir()
    for f in hf_dir.iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    first = suite_model_dir(src, tmp_path / "cache")
    (src / "preprocessor_config.json").write_text((src / "preprocessor_config.json").read_text() + "\n")
    second = suite_model_dir(src, tmp_path / "cache")
    assert first != second and (Path(second) / "model.safetensors").is_file()
    assert suite_model_dir(first, tmp_path / "cache") == first and foreign_kind(first) is None
    assert isinstance(load_transcriber(src, cache_dir=tmp_path / "cache"), Transcriber)


def test_a_wav2vec2_directory_without_a_ctc_head_is_named(hf_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "ssl"
    d.mkdir()
    cfg = json.loads((hf_dir / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "architectures": ["Wav2Vec2ForPreTraining"]}))
    with pytest.raises(ValueError, match=r"ssl: .*without a CTC head"):
        Transcriber.from_pretrained(d, cache_dir=tmp_path / "cache")


def _fairseq2_dir(tmp_path: Path) -> Path:
    """A tiny fairseq2 Wav2Vec2AsrModel checkpoint, its encoder config and a 9-piece character SentencePiece model."""
    import sentencepiece as spm
    import torch

    d = tmp_path / "omni"
    d.mkdir()
    (tmp_path / "text.txt").write_text("abcd ab cd dcba\n" * 20)
    spm.SentencePieceTrainer.train(input=str(tmp_path / "text.txt"), model_prefix=str(d / "omni_tokenizer"),
                                   model_type="char", vocab_size=9, bos_id=0, pad_id=1, eos_id=2, unk_id=3,
                                   minloglevel=2)
    (d / "omni_tokenizer.vocab").unlink()
    torch.save({"model": _fairseq2_state(True)}, d / "model.pt")
    (d / "encoder_config.json").write_text(json.dumps(_fairseq2_config(True)))
    return d


def test_a_fairseq2_directory_converts_to_the_same_network(tmp_path: Path) -> None:
    import numpy as np
    import torch

    from speech.asr.config import CTCModelConfig
    from speech.asr.model import CTCModel

    src = _fairseq2_dir(tmp_path)
    assert foreign_kind(src) == "fairseq2"
    t = Transcriber.from_pretrained(src, cache_dir=tmp_path / "cache")
    cfg = fs2.config_from_fairseq2(_fairseq2_config(True))
    ref = CTCModel(CTCModelConfig(vocab_size=9, encoder=cfg, encoder_type="wav2vec2")).eval()
    ref.load_state_dict(fs2.state_from_fairseq2(_fairseq2_state(True), cfg))
    wave = 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    with torch.no_grad():
        want, _ = ref(torch.from_numpy(wave)[None], torch.tensor([8000]))
    got, _ = t.log_probs([wave])
    torch.testing.assert_close(got, want)
    assert t.vocab.tokens == ["<s>", "<pad>", "</s>", "<unk>", " ", "a", "b", "c", "d"]  # "▁" is the space
    assert t.vocab.blank_id == 0 and t.vocab.silent_ids == [0, 1, 2, 3]
    assert isinstance(t.transcribe([wave])[0], str)
    (src / "encoder_config.json").write_text(json.dumps({**_fairseq2_config(True), "num_encoder_layers": 3}))
    with pytest.raises(ValueError, match=r"omni: .*fairseq2 key|omni: .*do not fit"):
        Transcriber.from_pretrained(src, cache_dir=tmp_path / "cache")

"""Batch transcription: folder, manifest and file inputs; bad files skipped and reported; resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from common.io import read_jsonl_lenient
from speech.asr.batch import collect_inputs, transcribe_to_file
from speech.asr.config import CTCModelConfig, conformer
from speech.asr.hub import save_pretrained
from speech.asr.infer import Transcriber
from speech.asr.model import CTCModel
from tests.helpers import ROOT
from text.char_vocab import CharVocab


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model: transcription plumbing does not need a good one."""
    vocab = CharVocab(list("abcdefghij"))
    enc = conformer(d_model=32, num_layers=1, num_heads=2, conv_kernel=5)
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=enc))
    return save_pretrained(model, vocab, tmp_path_factory.mktemp("model") / "m")


@pytest.fixture()
def audio_dir(tiny_corpus: Path, tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for i, row in enumerate(read_jsonl_lenient(tiny_corpus / "test.jsonl")[:4]):
        shutil.copy(tiny_corpus / row["audio"], d / f"good{i}.wav")
    (d / "empty.wav").write_bytes(b"")
    (d / "truncated.wav").write_bytes((d / "good0.wav").read_bytes()[:30])
    (d / "garbage.mp3").write_bytes(os.urandom(2000))
    sf.write(d / "silent.flac", np.zeros(8000, dtype=np.float32), 16000)
    sf.write(d / "nan.wav", np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    good = sf.read(d / "good0.wav")[0]
    sf.write(d / "stereo44k.wav", np.stack([good, good], 1).repeat(3, 0)[: len(good) * 2], 44100)
    return d


BAD = {"empty.wav", "truncated.wav", "garbage.mp3", "silent.flac", "nan.wav"}


def test_folder_skips_bad_files_and_transcribes_the_rest(model_dir: Path, audio_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    report = transcribe_to_file(Transcriber.from_pretrained(model_dir), collect_inputs(audio_dir), out,
                                progress=False)
    rows = read_jsonl_lenient(out)
    assert {Path(r["audio"]).name for r in rows} == {f"good{i}.wav" for i in range(4)} | {"stereo44k.wav"}
    assert all(isinstance(r["text"], str) and r["duration"] > 0 for r in rows)
    failed = {Path(f["audio"]).name: f["reason"] for f in report.failed}
    assert set(failed) == BAD
    assert "empty" in failed["empty.wav"] and "silent" in failed["silent.flac"] and "NaN" in failed["nan.wav"]
    assert "unreadable" in failed["garbage.mp3"]
    logged = read_jsonl_lenient(tmp_path / "out.jsonl.failed.jsonl")
    assert {Path(f["audio"]).name for f in logged} == BAD


def test_rerun_resumes_and_keeps_finished_rows(model_dir: Path, audio_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    items = collect_inputs(audio_dir)
    t = Transcriber.from_pretrained(model_dir)
    # A previous run that died after two files left its rows in the .partial file.
    first = transcribe_to_file(t, items[:2], tmp_path / "first.jsonl", progress=False)
    (tmp_path / "out.jsonl.partial").write_text((tmp_path / "first.jsonl").read_text() + '{"audio": "torn')
    report = transcribe_to_file(t, items, out, progress=False)
    assert report.skipped_existing == first.done
    assert report.done + report.skipped_existing == len(items) - len(BAD)
    assert not (tmp_path / "out.jsonl.partial").exists()
    again = transcribe_to_file(t, items, out, progress=False)
    assert again.done == 0 and again.skipped_existing == len(items) - len(BAD)


def test_manifest_input_keeps_lang_and_paths_as_given(model_dir: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    items = collect_inputs(tiny_corpus / "dev.jsonl")
    out = tmp_path / "dev.jsonl"
    transcribe_to_file(Transcriber.from_pretrained(model_dir), items, out, progress=False)
    rows = read_jsonl_lenient(out)
    manifest = read_jsonl_lenient(tiny_corpus / "dev.jsonl")
    assert [r["audio"] for r in rows] == [m["audio"] for m in manifest]
    assert [r["lang"] for r in rows] == [m["lang"] for m in manifest]
    assert [r["ref"] for r in rows] == [m["text"] for m in manifest]


def test_language_alphabet_keeps_output_in_script(tmp_path: Path) -> None:
    import torch

    from speech.asr.ctc import greedy_decode

    vocab = CharVocab(list("abдж"), lang_chars={"deu_Latn": "ab", "ukr_Cyrl": "дж"})
    logp = torch.full((2, 3, len(vocab)), -10.0)
    logp[:, :, vocab.index["д"]] = 0.0  # Cyrillic wins everywhere...
    logp[:, :, vocab.index["a"]] = -1.0  # ...and Latin comes second
    lens = torch.tensor([3, 3])
    assert greedy_decode(logp, lens, vocab) == ["д", "д"]
    assert greedy_decode(logp, lens, vocab, ["deu_Latn", None]) == ["a", "д"]
    assert greedy_decode(logp, lens, vocab, ["xxx_Latn", "ukr_Cyrl"]) == ["д", "д"]
    vocab.save(tmp_path / "v.json")
    assert CharVocab.load(tmp_path / "v.json").lang_chars == vocab.lang_chars


def test_auto_decoder_uses_the_model_dirs_language_models(model_dir: Path, audio_dir: Path, tmp_path: Path) -> None:
    from speech.asr.beam import LanguageModels

    lm_dir = tmp_path / "with_lm"
    shutil.copytree(model_dir, lm_dir)
    lms = LanguageModels.fit({"deu_Latn": ["abc", "cab", "bad"]}, order=3)
    lms.alpha, lms.beta = 2.0, 0.0
    lms.save(lm_dir)
    wave = sf.read(audio_dir / "good0.wav", dtype="float32")[0]
    auto = Transcriber.from_pretrained(lm_dir)
    greedy = Transcriber.from_pretrained(lm_dir, decoder="greedy")
    assert auto.lms is not None and greedy.lms is not None
    logp, lens = auto.model(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    expected = lms.decode(logp[0, : int(lens[0])].detach().numpy(), auto.vocab, "deu_Latn")
    assert auto.transcribe_waves([wave], ["deu_Latn"]) == [expected]
    # Greedy decoding, and languages without an LM, skip the beam search.
    assert greedy.transcribe_waves([wave], ["deu_Latn"]) == auto.transcribe_waves([wave], [None])
    with pytest.raises(ValueError, match="decoder"):
        Transcriber.from_pretrained(lm_dir, decoder="viterbi")


def test_python_api_accepts_paths_arrays_and_bytes(model_dir: Path, audio_dir: Path) -> None:
    t = Transcriber.from_pretrained(model_dir)
    path = audio_dir / "good0.wav"
    wave = sf.read(path, dtype="float32")[0]
    texts = t.transcribe([str(path), wave, path.read_bytes()], batch_size=2)
    assert texts[0] == texts[1] == texts[2]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_transcriber_stays_close(model_dir: Path, audio_dir: Path, precision: str) -> None:
    waves = [sf.read(audio_dir / f"good{i}.wav", dtype="float32")[0] for i in range(2)]
    ref, ref_lens = Transcriber.from_pretrained(model_dir).log_probs(waves)
    fast = Transcriber.from_pretrained(model_dir, precision=precision)
    out, lens = fast.log_probs(waves)
    assert fast.precision == precision and out.dtype == torch.float32 and lens.tolist() == ref_lens.tolist()
    assert (out - ref).abs().max() < 0.2  # close, not exact: never the default
    assert all(isinstance(t, str) for t in fast.transcribe(waves))
    with pytest.raises(ValueError, match="fp16"):
        Transcriber.from_pretrained(model_dir, precision="fp16")


def test_cli_exit_code_and_summary(model_dir: Path, audio_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    # precision=int8 also takes the config key through to the transcriber.
    cmd = [sys.executable, str(ROOT / "scripts" / "transcribe.py"), f"model={model_dir}", f"input={audio_dir}",
           f"output={out}", "progress=false", "precision=int8"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"{len(BAD)} file(s) skipped" in proc.stdout + proc.stderr
    assert len(read_jsonl_lenient(out)) == 5
    assert (tmp_path / "cli.jsonl.log").exists()


def test_missing_input_and_model_are_clear_errors(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="input not found"):
        collect_inputs(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="neither a model directory"):
        Transcriber.from_pretrained(tmp_path / "nope.bin")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"audio": "a.wav"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"broken.jsonl:2"):
        collect_inputs(broken)

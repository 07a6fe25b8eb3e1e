"""ONNX export: onnxruntime's log-probs equal the PyTorch model's on padded batches of other lengths than traced."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from speech.asr import export as onnx_export
from speech.asr.config import CTCModelConfig, conformer, wav2vec2, wav2vec2_tiny
from speech.asr.export import OnnxCTCModel, export_onnx, max_logprob_diff
from speech.asr.hub import save_pretrained
from speech.asr.infer import Transcriber
from speech.asr.model import CTCModel
from speech.features import pad_waves
from tests.helpers import ROOT, load_script
from text.char_vocab import CharVocab

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

VOCAB = CharVocab(list("abcdefghi"))
export_script = load_script("export_onnx")


def tiny(kind: str) -> CTCModel:
    """A tiny random CTC model with a confident head (so greedy transcripts are not all blank)."""
    torch.manual_seed(0)
    if kind.startswith("conformer"):  # _upsampled: two output frames an encoder frame; _hop8: 8 ms log-mel frames
        cfg = CTCModelConfig(vocab_size=len(VOCAB), decode_hop_ms=8.0 if kind.endswith("hop8") else None,
                             encoder=conformer(d_model=32, num_layers=1, num_heads=2, conv_kernel=5,
                                               upsample=2 if kind.endswith("upsampled") else 1))
    elif kind == "wav2vec2_layer":  # XLS-R-shaped: layer norm after every conv, pre-LN, normalised input
        cfg = CTCModelConfig(vocab_size=len(VOCAB), encoder=wav2vec2_tiny(num_layers=1), encoder_type="wav2vec2")
    else:  # wav2vec2-base-shaped: group norm after the first conv, post-LN
        cfg = CTCModelConfig(vocab_size=len(VOCAB), encoder_type="wav2vec2", encoder=wav2vec2(
            conv_dims=(32,) * 7, d_model=32, num_layers=1, num_heads=2, ffn_dim=64, pos_conv_kernel=16,
            pos_conv_groups=2))
    model = CTCModel(cfg).eval()
    with torch.no_grad():
        model.head.weight.mul_(20.0)
    return model


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Padded batches of sizes and lengths unlike the export's example (2 x 1 s), one shorter than a window."""
    rng = np.random.default_rng(1)
    sizes = ([4_000, 11_200, 27_000], [300], [20_000, 19_999, 640, 20_000])
    return [pad_waves([0.1 * rng.standard_normal(n).astype(np.float32) for n in lens]) for lens in sizes]


def reference(model: CTCModel) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The PyTorch model's own inference outputs (taken before export)."""
    with torch.inference_mode():
        return [model(w, n) for w, n in batches()]


@pytest.mark.parametrize(("kind", "exporter"), [("wav2vec2_layer", "dynamo"), ("wav2vec2_group", "torchscript"),
                                                ("conformer", "torchscript"), ("conformer_upsampled", "torchscript"),
                                                ("conformer_hop8", "torchscript")])
def test_onnxruntime_matches_pytorch_on_padded_batches(kind: str, exporter: str, tmp_path: Path) -> None:
    model = tiny(kind)
    refs = reference(model)
    assert export_onnx(model, tmp_path / "m.onnx", exporter) == exporter
    onnx = OnnxCTCModel(tmp_path / "m.onnx", threads=1)
    for (wave, lens), ref in zip(batches(), refs):
        got = onnx(wave, lens)
        assert got[0].shape == ref[0].shape
        assert max_logprob_diff(ref, got) < 1e-4


def test_auto_falls_back_to_torchscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(onnx_export, "_export_dynamo", broken)
    model = tiny("conformer")
    ref = reference(model)[0]
    assert export_onnx(model, tmp_path / "m.onnx") == "torchscript"
    assert max_logprob_diff(ref, OnnxCTCModel(tmp_path / "m.onnx", threads=1)(*batches()[0])) < 1e-4
    with pytest.raises(RuntimeError, match="unsupported op"):
        export_onnx(model, tmp_path / "n.onnx", "dynamo")
    assert not (tmp_path / "n.onnx").exists()


def test_transcriber_runs_the_onnx_model_like_the_pytorch_one(tmp_path: Path) -> None:
    model = tiny("conformer")
    waves = [w[: int(n)].numpy() for w, n in zip(*batches()[2])]
    expected = Transcriber(model, VOCAB, decoder="greedy").transcribe(waves)
    assert any(expected)  # not all blank, so the comparison means something
    export_onnx(model, tmp_path / "m.onnx", "torchscript")
    assert Transcriber(OnnxCTCModel(tmp_path / "m.onnx", 1), VOCAB, decoder="greedy").transcribe(waves) == expected  # type: ignore[arg-type]


def test_bad_files_and_models_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        OnnxCTCModel(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"bad\.onnx: onnxruntime cannot load it"):
        OnnxCTCModel(tmp_path / "bad.onnx")
    with pytest.raises(TypeError, match="CTCModel"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")  # type: ignore[arg-type]


def test_script_exports_and_checks_a_model_directory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model_dir = save_pretrained(tiny("conformer"), VOCAB, tmp_path / "model")
    out = tmp_path / "model.onnx"
    with initialize_config_dir(str(ROOT / "configs" / "inference"), version_base="1.3"):
        cfg = compose("export_onnx", [f"model={model_dir}", f"output={out}", "exporter=torchscript", "threads=1"])
    with caplog.at_level(logging.INFO, logger="export_onnx"):
        export_script.main.__wrapped__(cfg)
    assert "max |log-prob diff|" in caplog.text
    assert OnnxCTCModel(out).meta["exporter"] == "torchscript"
    with initialize_config_dir(str(ROOT / "configs" / "inference"), version_base="1.3"):
        cfg = compose("export_onnx", [f"model={tmp_path}", f"output={out}"])
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        export_script.main.__wrapped__(cfg)


def test_benchmark_config_keeps_the_old_command_line(tmp_path: Path) -> None:
    from benchmarks.hf_pipeline_throughput import _list_modes, _modes

    argv = _list_modes(["n=10", "modes=fp32,onnx", "model=runs/x/model"])
    assert argv == ["n=10", "modes=[fp32,onnx]", "model=runs/x/model"]
    with initialize_config_dir(str(ROOT / "configs" / "benchmarks"), version_base="1.3"):
        cfg = compose("hf_pipeline_throughput", argv)
    assert (cfg.n, cfg.model, _modes(cfg.modes)) == (10, "runs/x/model", ["fp32", "onnx"])
    assert _modes("fp32,bf16") == ["fp32", "bf16"]
    with pytest.raises(SystemExit, match="unknown"):
        _modes(["fp16"])

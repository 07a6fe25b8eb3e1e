"""ONNX export of CTC models and an onnxruntime stand-in that the suite's ``Transcriber`` runs like the model.

``export_onnx(model, "m.onnx")`` writes waveforms [B, S] + lengths [B] -> log-probs [B, T, V] + frame counts [B]
with dynamic batch and time axes; ``OnnxCTCModel("m.onnx")`` runs it. See scripts/export_onnx.py.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.io import atomic_open
from speech.asr.model import CTCModel
from speech.audio import SAMPLE_RATE
from speech.encoders.wav2vec2 import Wav2Vec2Encoder, lengths_mask
from speech.features import LogMel

log = logging.getLogger(__name__)

OPSET = 18
"""ONNX opset written: recent, and supported by both torch exporters and onnxruntime."""

INPUTS, OUTPUTS = ("wave", "wave_lens"), ("log_probs", "lens")


class DFTLogMel(nn.Module):
    """``LogMel`` with the STFT written as a strided convolution over cos/sin kernels: no complex tensors, so
    both ONNX exporters take it. Same windows, mel filters and per-utterance normalisation."""

    def __init__(self, logmel: LogMel):
        super().__init__()
        spec, mel = logmel.mel.spectrogram, logmel.mel.mel_scale
        n_fft, win = spec.n_fft, spec.window
        self.hop, self.n_fft = logmel.eval_hop, n_fft  # the graph is for inference
        left = (n_fft - win.numel()) // 2  # torch.stft centres a shorter window inside n_fft
        window = F.pad(win.double(), (left, n_fft - win.numel() - left))
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
        ang = 2 * math.pi * k * torch.arange(n_fft, dtype=torch.float64)[None] / n_fft  # [K, N]
        kernels = torch.cat([torch.cos(ang), -torch.sin(ang)]) * window  # [2K, N]
        self.kernels: Tensor
        self.fb: Tensor
        self.register_buffer("kernels", kernels.float()[:, None, :], persistent=False)  # [2K, 1, N]
        self.register_buffer("fb", mel.fb.clone(), persistent=False)  # [K, n_mels]

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2))  # center=True with zeros
        re, im = F.conv1d(x, self.kernels, stride=self.hop).chunk(2, dim=1)  # [B, K, T] each
        feats = ((re * re + im * im).transpose(1, 2) @ self.fb).clamp_min(1e-10).log()  # [B, T, F]
        lens = wave_lens // self.hop + 1
        m = lengths_mask(lens, feats.shape[1])[..., None].to(feats.dtype)
        n = lens.clamp_min(1)[:, None, None].to(feats.dtype)
        mean = (feats * m).sum(1, keepdim=True) / n
        var = ((feats - mean).pow(2) * m).sum(1, keepdim=True) / n
        return (feats - mean) / (var + 1e-5).sqrt() * m, lens


class ExportableCTC(nn.Module):
    """A ``CTCModel``'s inference forward with every step batched and masked (no per-utterance loops, no
    branches on the data), so that one traced graph serves any batch and length. Same weights, same outputs."""

    def __init__(self, model: CTCModel):
        super().__init__()
        if not isinstance(model, CTCModel):
            raise TypeError(f"ONNX export takes a CTCModel (ctc_conformer or ctc_wav2vec2), not {type(model).__name__}")
        if model.cfg.sample_rate != SAMPLE_RATE:  # the model's own resampling runs utterance by utterance
            raise TypeError(f"ONNX export takes {SAMPLE_RATE} Hz models, not {model.cfg.sample_rate} Hz")
        self.model = model.eval()
        self.logmel = None if isinstance(model.encoder, Wav2Vec2Encoder) else DFTLogMel(model.frontend)

    @property
    def min_samples(self) -> int:
        """Shortest padded batch the graph takes (the waveform convs need one whole window)."""
        enc = self.model.encoder
        return enc.feature_extractor.receptive_field() if isinstance(enc, Wav2Vec2Encoder) else 1

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probabilities [B, T, V] and frame counts [B] of waveforms [B, S] (S >= ``min_samples``)."""
        enc = self.model.encoder
        if isinstance(enc, Wav2Vec2Encoder):
            hidden, lens = self._wav2vec2(enc, wave, wave_lens)
        else:
            assert self.logmel is not None
            hidden, lens = enc(*self.logmel(wave, wave_lens))
        return self.model.head(hidden).float().log_softmax(-1), lens

    @staticmethod
    def _wav2vec2(enc: Wav2Vec2Encoder, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        cfg, fe = enc.cfg, enc.feature_extractor
        if cfg.normalize_wave:
            wave = enc.normalize(wave, wave_lens)
        x, lens = wave[:, None, :], wave_lens  # [B, 1, S]
        for i, (conv, k, s) in enumerate(zip(fe.convs, cfg.conv_kernels, cfg.conv_strides)):
            x = conv(x)  # [B, C, T_i]
            lens = torch.div(lens - k, s, rounding_mode="floor") + 1
            if cfg.feature_norm == "layer":
                x = fe.norms[i](x.transpose(1, 2)).transpose(1, 2)
            elif i == 0:  # per-channel statistics over each utterance's own frames
                norm = fe.norms[0]
                assert isinstance(norm, nn.GroupNorm)
                m = lengths_mask(lens, x.shape[-1])[:, None, :].to(x.dtype)  # [B, 1, T]
                n = lens.clamp_min(1)[:, None, None].to(x.dtype)
                mean = (x * m).sum(-1, keepdim=True) / n
                var = ((x - mean).pow(2) * m).sum(-1, keepdim=True) / n
                x = ((x - mean) * torch.rsqrt(var + norm.eps) * norm.weight[:, None] + norm.bias[:, None]) * m
            x = F.gelu(x)
        lens = lens.clamp_min(0)
        h, _ = enc.project(x.transpose(1, 2))  # [B, T, D]
        valid = lengths_mask(lens, h.shape[1])  # always masked: a mask of all True equals none
        h = h * valid[..., None].to(h.dtype)
        h = h + enc.pos_conv(h)
        if not cfg.pre_norm:
            h = enc.norm(h)
        for layer in enc.layers:
            h = layer(h, valid)
        return (enc.norm(h) if cfg.pre_norm else h), lens


def example_inputs(min_samples: int) -> tuple[Tensor, Tensor]:
    """Two padded utterances of different lengths (a batch of one would let the exporter fix the batch to 1)."""
    n = max(16_000, 4 * min_samples)
    wave = 0.1 * torch.randn(2, n, generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([n, n * 5 // 8])
    wave[1, int(lens[1]) :] = 0
    return wave, lens


def _export_dynamo(net: ExportableCTC, args: tuple[Tensor, Tensor], path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=1024)
    samples = torch.export.Dim("samples", min=net.min_samples, max=16_000 * 3600)
    program = torch.onnx.export(net, args, dynamo=True, opset_version=OPSET, input_names=list(INPUTS),
                                output_names=list(OUTPUTS), external_data=False,
                                dynamic_shapes={"wave": {0: batch, 1: samples}, "wave_lens": {0: batch}})
    assert program is not None
    program.save(str(path))


def _export_torchscript(net: ExportableCTC, args: tuple[Tensor, Tensor], path: Path) -> None:
    torch.onnx.export(net, args, str(path), dynamo=False, opset_version=OPSET, input_names=list(INPUTS),
                      output_names=list(OUTPUTS),
                      dynamic_axes={"wave": {0: "batch", 1: "samples"}, "wave_lens": {0: "batch"},
                                    "log_probs": {0: "batch", 1: "frames"}, "lens": {0: "batch"}})


def export_onnx(model: CTCModel, output: str | os.PathLike[str], exporter: str = "auto") -> str:
    """Write ``model`` as ONNX to ``output`` (atomically); return the exporter used ("dynamo" or "torchscript").

    ``exporter``: "auto" tries torch's dynamo exporter and falls back to the TorchScript-based one if it fails.
    """
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ValueError(f"exporter must be auto, dynamo or torchscript, got {exporter!r}")
    net = ExportableCTC(model.cpu().float()).eval()
    args = example_inputs(net.min_samples)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.export.onnx")
    used = "dynamo" if exporter != "torchscript" else "torchscript"
    try:
        with torch.no_grad():
            if used == "dynamo":
                try:
                    _export_dynamo(net, args, tmp)
                except Exception as e:
                    if exporter == "dynamo":
                        raise
                    log.warning("dynamo ONNX export failed (%s: %s); using the TorchScript exporter",
                                type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                    used = "torchscript"
            if used == "torchscript":
                _export_torchscript(net, args, tmp)
        _add_metadata(tmp, out, {"min_samples": str(net.min_samples), "exporter": used,
                                 "model_type": model.model_type})
    finally:
        tmp.unlink(missing_ok=True)
    return used


def _add_metadata(src: Path, dst: Path, meta: dict[str, str]) -> None:
    """Copy the ONNX file ``src`` to ``dst`` atomically with ``meta`` in its metadata_props."""
    import onnx

    proto = onnx.load(str(src))
    for key, value in meta.items():
        onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, key: value})
    with atomic_open(dst, "wb") as f:
        f.write(proto.SerializeToString())


class OnnxCTCModel(nn.Module):
    """An exported CTC model run by onnxruntime, called like ``CTCModel``: (wave, lens[, langs]) -> (log-probs,
    frame counts), so ``Transcriber(OnnxCTCModel(path), vocab)`` batches and decodes it as it does the model."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError("onnxruntime is not installed: pip install -e '.[onnx]'") from e
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file (python scripts/export_onnx.py model=... output=...)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ValueError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: {e})") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        self.min_samples = int(meta.get("min_samples", 1))
        self.meta: dict[str, Any] = dict(meta)

    def forward(self, wave: Tensor, wave_lens: Tensor, langs: Sequence[str | None] | None = None
                ) -> tuple[Tensor, Tensor]:
        """Log-probabilities [B, T, V] and frame counts [B]; ``langs`` is unused, as in ``CTCModel``."""
        short = self.min_samples - wave.shape[-1]
        if short > 0:  # a batch shorter than one window: its utterances get 0 frames, as in the model
            wave = F.pad(wave, (0, short))
        logp, lens = self.session.run(list(OUTPUTS), {"wave": wave.float().cpu().numpy(),
                                                      "wave_lens": wave_lens.long().cpu().numpy()})
        return torch.from_numpy(logp), torch.from_numpy(lens)


def load_ctc(path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """A suite model directory or ``.ckpt``, or a transformers ``Wav2Vec2ForCTC`` directory: (model, vocab)."""
    from speech.asr.hub import load_model
    from speech.asr.infer import model_type
    from speech.asr.interop.hf import load_hf

    return load_hf(path) if model_type(path) == "wav2vec2" else load_model(path)


def max_logprob_diff(ref: tuple[Tensor, Tensor], got: tuple[Tensor, Tensor], relative: bool = False) -> float:
    """Largest log-prob difference over the real frames of two (log-probs, lengths) outputs: absolute, or with
    ``relative`` over max(1, |ref|) (a float32 log-prob of -1e4 carries 1e-3 of rounding on its own)."""
    if not torch.equal(ref[1].long(), got[1].long()):
        raise AssertionError(f"frame counts differ: {ref[1].tolist()} vs {got[1].tolist()}")
    if ref[0].shape != got[0].shape:
        raise AssertionError(f"log-prob shapes differ: {tuple(ref[0].shape)} vs {tuple(got[0].shape)}")
    valid = lengths_mask(ref[1], ref[0].shape[1])  # [B, T]
    diff = (ref[0].float() - got[0].float()).abs()
    if relative:
        diff = diff / ref[0].float().abs().clamp_min(1.0)
    return float(diff[valid].max()) if bool(valid.any()) else 0.0

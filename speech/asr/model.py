"""CTC recogniser: an encoder (log-mel conformer or wav2vec2 over the waveform) and a linear character head."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from speech.asr.config import CTCModelConfig
from speech.audio import SAMPLE_RATE
from speech.encoders.conformer import ConformerConfig, ConformerEncoder
from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder
from speech.features import LogMel, SpecAugment


def time_mask(lens: Tensor, size: int, masks: int, width: float) -> Tensor:
    """[B, size] True inside ``masks`` random spans, each up to ``width`` of the utterance."""
    tr = torch.arange(size, device=lens.device)[None]
    out = torch.zeros(lens.shape[0], size, dtype=torch.bool, device=lens.device)
    max_w = (lens.float() * width).long().clamp_min(1)[:, None]
    for _ in range(masks):
        w = (torch.rand(lens.shape[0], 1, device=lens.device) * max_w).long()
        s = (torch.rand(lens.shape[0], 1, device=lens.device) * (lens[:, None] - w).clamp_min(1)).long()
        out |= (tr >= s) & (tr < s + w)
    return out


def resample_waves(wave: Tensor, lens: Tensor, src: int, dst: int) -> tuple[Tensor, Tensor]:
    """Waveforms [B, S] from ``src`` to ``dst`` Hz, each over its own samples (padding must not leak in)."""
    import torchaudio.functional as AF

    g = math.gcd(src, dst)
    new_lens = torch.div(lens * (dst // g) + src // g - 1, src // g, rounding_mode="floor")  # ceil, as torchaudio
    out = wave.new_zeros(wave.shape[0], int(new_lens.max()) if len(lens) else 0)
    for b, n in enumerate(lens.tolist()):
        if n:
            out[b, : int(new_lens[b])] = AF.resample(wave[b, :n], src, dst)
    return out, new_lens


class CTCModel(nn.Module):
    """Waveforms [B, S] to per-frame character log-probabilities [B, T, V] (Graves et al., 2006).

    ``cfg.encoder_type`` picks the encoder: "conformer" (log-mel + SpecAugment + conformer) or
    "wav2vec2" (raw waveform; training-time time masks use the encoder's learned mask embedding).
    """

    def __init__(self, cfg: CTCModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder: ConformerEncoder | Wav2Vec2Encoder
        if isinstance(cfg.encoder, ConformerConfig):
            self.frontend = LogMel(cfg.sample_rate, cfg.encoder.n_mels, eval_hop_ms=cfg.decode_hop_ms)
            self.specaug = SpecAugment(**vars(cfg.specaug))
            self.encoder = ConformerEncoder(cfg.encoder)
        elif isinstance(cfg.encoder, Wav2Vec2Config):
            self.encoder = Wav2Vec2Encoder(cfg.encoder)
        self.head = nn.Linear(cfg.encoder.d_model, cfg.vocab_size)

    @property
    def model_type(self) -> str:
        """The ``config.json`` model_type of this model."""
        return f"ctc_{self.cfg.encoder_type}"

    def encode(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder frames [B, T, D] and their lengths [B]."""
        if self.cfg.sample_rate != SAMPLE_RATE:  # the suite's audio is 16 kHz; the network runs at its own rate
            wave, wave_lens = resample_waves(wave, wave_lens, SAMPLE_RATE, self.cfg.sample_rate)
        if isinstance(self.encoder, Wav2Vec2Encoder):
            mask = None
            if self.training and self.cfg.specaug.time_masks > 0:
                lens = self.encoder.output_lens(wave_lens)
                mask = time_mask(lens, int(lens.max()), self.cfg.specaug.time_masks, self.cfg.specaug.time_width)
            return self.encoder(wave, wave_lens, mask)
        feats, lens = self.specaug.stretch(*self.frontend(wave, wave_lens))
        return self.encoder(self.specaug(feats, lens), lens)

    def forward(
        self, wave: Tensor, wave_lens: Tensor, langs: Sequence[str | None] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Log-probabilities [B, T, V] (float32) and frame counts [B]; ``langs`` is unused here."""
        hidden, lens = self.encode(wave, wave_lens)
        return self.head(hidden).float().log_softmax(-1), lens

    def set_decode_hop(self, ms: float | None) -> None:
        """Read input at a log-mel hop of ``ms`` milliseconds outside training (None: the training hop)."""
        if not isinstance(self.encoder, ConformerEncoder):
            raise ValueError("a decode hop is for log-mel (conformer) models")
        self.frontend.set_eval_hop(ms)
        self.cfg.decode_hop_ms = ms

    def resize_head(self, vocab_size: int) -> None:
        """Grow the head for new characters, keeping the trained rows."""
        old = self.head
        if vocab_size < old.out_features:
            raise ValueError("a vocabulary can only grow")
        new = nn.Linear(old.in_features, vocab_size).to(old.weight.device)
        new.weight.data[: old.out_features] = old.weight.data
        new.bias.data[: old.out_features] = old.bias.data
        self.head = new
        self.cfg.vocab_size = vocab_size

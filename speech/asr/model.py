"""CTC recogniser: log-mel front-end, conformer encoder, linear character head."""

from __future__ import annotations

from torch import Tensor, nn

from speech.asr.config import CTCModelConfig
from speech.encoders.conformer import ConformerEncoder
from speech.features import LogMel, SpecAugment


class CTCModel(nn.Module):
    """Waveforms [B, S] to per-frame character log-probabilities [B, T, V] (Graves et al., 2006)."""

    def __init__(self, cfg: CTCModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(cfg.sample_rate, cfg.encoder.n_mels)
        self.specaug = SpecAugment(**vars(cfg.specaug))
        self.encoder = ConformerEncoder(cfg.encoder)
        self.head = nn.Linear(cfg.encoder.d_model, cfg.vocab_size)

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        feats, lens = self.frontend(wave, wave_lens)
        feats = self.specaug(feats, lens)
        hidden, lens = self.encoder(feats, lens)
        return self.head(hidden).float().log_softmax(-1), lens

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

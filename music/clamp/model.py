"""CLaMP 3 (Wu et al., 2025, "CLaMP 3: Universal Music Information Retrieval Across Unaligned Modalities and Unseen
Languages"), small: an M3 patch encoder shared by ABC and MTF, a transformer over audio segment features, and a
multilingual text tower, each projected to unit vectors in one space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from music.clamp.config import AudioConfig, ClampConfig, SymbolicConfig
from music.clamp.patches import PAD, VOCAB
from text.sentence_encoder import SentenceEncoder

MODEL_TYPE = "clamp3"
MAX_POSITIONS = 1024


def _transformer(d: int, heads: int, ffn: int, dropout: float, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True)
    # No nested tensors: an embedding must not change with the padding of its batch.
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``h [B, N, D]`` over the positions where ``mask [B, N]`` is True."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, D]


class PatchEncoder(nn.Module):
    """M3: each patch's characters are embedded and concatenated into one patch vector, then a transformer reads the
    patches. A masked patch is replaced by a learned vector and its characters are predicted back from its output."""

    def __init__(self, cfg: SymbolicConfig):
        super().__init__()
        self.cfg = cfg
        self.chars = nn.Embedding(VOCAB, cfg.char_dim, padding_idx=PAD)
        self.patch_in = nn.Linear(cfg.patch_size * cfg.char_dim, cfg.d_model)
        self.pos = nn.Embedding(min(cfg.max_patches, MAX_POSITIONS), cfg.d_model)
        self.mask_patch = nn.Parameter(torch.zeros(cfg.d_model))
        self.body = _transformer(cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.num_layers)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.char_pos = nn.Embedding(cfg.patch_size, cfg.d_model)
        self.char_out = nn.Linear(cfg.d_model, VOCAB)

    def forward(self, ids: Tensor, mask: Tensor, masked: Tensor | None = None) -> Tensor:
        """Patch states ``[B, N, D]`` of ``ids [B, N, P]``; ``masked [B, N]`` hides those patches' characters."""
        ids, mask = ids[:, : self.pos.num_embeddings], mask[:, : self.pos.num_embeddings]
        b, n, p = ids.shape
        x = self.patch_in(self.chars(ids).reshape(b, n, p * self.cfg.char_dim))  # [B, N, D]
        if masked is not None:
            x = torch.where(masked[..., None], self.mask_patch.to(x.dtype), x)
        x = x + self.pos(torch.arange(n, device=ids.device))
        return self.norm(self.body(x, src_key_padding_mask=~mask))

    def predict_chars(self, states: Tensor) -> Tensor:
        """Character logits ``[M, P, VOCAB]`` for patch states ``[M, D]`` (the masked-patch objective)."""
        return self.char_out(F.gelu(states[:, None, :] + self.char_pos.weight[None]))


class AudioEncoder(nn.Module):
    """A transformer over segment features ``[B, S, F]``, CLaMP 3's audio encoder over MERT segments."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Sequential(nn.LayerNorm(cfg.in_dim), nn.Linear(cfg.in_dim, cfg.d_model))
        self.pos = nn.Embedding(min(cfg.max_segments, MAX_POSITIONS), cfg.d_model)
        self.body = _transformer(cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.num_layers)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, feats: Tensor, mask: Tensor) -> Tensor:
        feats, mask = feats[:, : self.pos.num_embeddings], mask[:, : self.pos.num_embeddings]
        x = self.inp(feats) + self.pos(torch.arange(feats.shape[1], device=feats.device))  # [B, S, D]
        return self.norm(self.body(x, src_key_padding_mask=~mask))


class ClampModel(nn.Module):
    """Symbolic (ABC and MTF), audio and text towers with projection heads into one unit-vector space."""

    model_type = MODEL_TYPE

    def __init__(self, cfg: ClampConfig):
        super().__init__()
        self.cfg = cfg
        self.symbolic = PatchEncoder(cfg.symbolic)
        self.symbolic_proj = nn.Linear(cfg.symbolic.d_model, cfg.embed_dim)
        self.audio = AudioEncoder(cfg.audio)
        self.audio_proj = nn.Linear(cfg.audio.d_model, cfg.embed_dim)
        self.text = SentenceEncoder(cfg.text)

    def embed_symbolic(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Unit vectors ``[B, E]`` for padded patch ids ``[B, N, P]`` (ABC or MTF alike)."""
        mask = mask[:, : self.symbolic.pos.num_embeddings]
        return F.normalize(self.symbolic_proj(masked_mean(self.symbolic(ids, mask), mask)), dim=-1)

    def embed_audio(self, feats: Tensor, mask: Tensor) -> Tensor:
        """Unit vectors ``[B, E]`` for padded segment features ``[B, S, F]``."""
        mask = mask[:, : self.audio.pos.num_embeddings]
        return F.normalize(self.audio_proj(masked_mean(self.audio(feats, mask), mask)), dim=-1)

    def embed_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Unit vectors ``[B, E]`` for token ids ``[B, T]``."""
        return self.text(ids, mask)

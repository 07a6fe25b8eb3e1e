"""SONAR-SLT's networks: a spatio-temporal transformer over keypoints pooled to one sentence embedding, and the
translator (that encoder plus the text decoder) that the hub saves."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vision.sign.config import PoseEncoderConfig, SignTranslatorConfig
from vision.sign.decoder import TextDecoder
from vision.sign.pose_io import FACE, LEFT_HAND, N_HAND, RIGHT_HAND

MODEL_TYPE = "sign_translator"
IN_CHANNELS = 4
"""x, y, z and the confidence of each point."""


class PartEmbed(nn.Module):
    """One body part's points in one frame -> a vector; missing points enter as zeros with confidence 0."""

    def __init__(self, points: int, dim: int, relative: bool = False):
        super().__init__()
        self.relative = relative
        extra = 3 if relative else 0  # a relative part also gets where it is: its first point's coordinates
        self.net = nn.Sequential(nn.Linear(points * IN_CHANNELS + extra, dim), nn.GELU(), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, T, P, 4]`` -> ``[B, T, dim]``."""
        if self.relative:  # a hand's shape relative to its wrist, read apart from where the wrist is
            wrist = x[:, :, :1, :3]
            rel = torch.cat([(x[..., :3] - wrist) * (x[..., 3:] > 0), x[..., 3:]], dim=-1)
            return self.norm(self.net(torch.cat([rel.flatten(2), wrist.flatten(2)], dim=-1)))
        return self.norm(self.net(x.flatten(2)))


class PoseEncoder(nn.Module):
    """Spatio-temporal transformer over MediaPipe Holistic keypoints, after SONAR-SLT (Hamidullah et al., 2025,
    "Beyond Text: Sign Language Translation with Language-Agnostic Sentence Embeddings") and the pose
    transformers of sign recognition (SPOTER, Bohacek & Hruz, 2022).

    Each frame's body, left hand, right hand and face subset become four part tokens that attend to each other
    (spatial), are pooled into a frame vector, subsampled in time by a strided convolution and read by a temporal
    transformer; attention pooling gives one vector, projected to the sentence-embedding width.
    """

    face_idx: Tensor
    body_idx: Tensor

    def __init__(self, cfg: PoseEncoderConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        face = torch.tensor([FACE.start + i for i in cfg.face_points], dtype=torch.long)
        self.register_buffer("face_idx", face, persistent=False)
        self.register_buffer("body_idx", torch.tensor(cfg.body_points, dtype=torch.long), persistent=False)
        d = cfg.part_dim
        self.parts = nn.ModuleList([PartEmbed(len(cfg.body_points), d), PartEmbed(N_HAND, d, relative=True),
                                    PartEmbed(N_HAND, d, relative=True), PartEmbed(len(cfg.face_points), d)])
        self.part_type = nn.Parameter(torch.zeros(4, d))
        spatial = nn.TransformerEncoderLayer(d, cfg.num_heads, 2 * d, cfg.dropout, activation="gelu",
                                             batch_first=True, norm_first=True)
        self.spatial = nn.TransformerEncoder(spatial, cfg.spatial_layers, enable_nested_tensor=False)
        self.frame_proj = nn.Linear(4 * d, cfg.d_model)
        self.conv = nn.Conv1d(cfg.d_model, cfg.d_model, kernel_size=2 * cfg.subsample - 1 if cfg.subsample > 1 else 1,
                              stride=cfg.subsample, padding=cfg.subsample - 1)
        self.pos = nn.Embedding(cfg.max_frames // max(cfg.subsample, 1) + 1, cfg.d_model)
        temporal = nn.TransformerEncoderLayer(cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout, activation="gelu",
                                              batch_first=True, norm_first=True)
        # Nested tensors would change results with the amount of padding.
        self.temporal = nn.TransformerEncoder(temporal, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.pool_query = nn.Linear(cfg.d_model, 1)
        self.proj = nn.Linear(cfg.d_model, embed_dim)
        nn.init.normal_(self.pos.weight, std=0.02)

    def frames(self, x: Tensor) -> Tensor:
        """Per-frame vectors ``[B, T, d_model]`` of keypoints ``x [B, T, 543, 4]``."""
        parts = [x.index_select(2, self.body_idx), x[:, :, LEFT_HAND], x[:, :, RIGHT_HAND],
                 x.index_select(2, self.face_idx)]
        tok = torch.stack([emb(p) for emb, p in zip(self.parts, parts)], dim=2) + self.part_type  # [B, T, 4, d]
        b, t = tok.shape[:2]
        tok = self.spatial(tok.flatten(0, 1)).view(b, t, -1)  # [B, T, 4d]
        return self.frame_proj(tok)  # [B, T, D]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Sentence-space vectors ``[B, embed_dim]`` (not normalised) of ``x [B, T, 543, 4]``, ``mask [B, T]``."""
        x = x[:, : self.cfg.max_frames]
        mask = mask[:, : self.cfg.max_frames]
        h = self.frames(x) * mask.unsqueeze(-1).to(x.dtype)  # [B, T, D]
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)  # [B, T', D]
        s = max(self.cfg.subsample, 1)
        # A subsampled step is real when its window's first frame is.
        m = mask[:, ::s][:, : h.shape[1]]  # [B, T']
        if m.shape[1] < h.shape[1]:
            m = F.pad(m, (0, h.shape[1] - m.shape[1]))
        h = h + self.pos(torch.arange(h.shape[1], device=h.device).clamp(max=self.pos.num_embeddings - 1))
        h = self.norm(self.temporal(h, src_key_padding_mask=~m))  # [B, T', D]
        w = self.pool_query(h).squeeze(-1).masked_fill(~m, float("-inf")).softmax(-1)  # [B, T']
        return self.proj((w.unsqueeze(-1) * h).sum(1))  # [B, E]


class SignTranslationModel(nn.Module):
    """Pose encoder + text decoder; the decoder reads the unit sentence embedding whatever made it."""

    model_type = MODEL_TYPE

    def __init__(self, cfg: SignTranslatorConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = PoseEncoder(cfg.encoder, cfg.embed_dim)
        self.decoder = TextDecoder(cfg.decoder, cfg.embed_dim)

    def embed(self, poses: Tensor, mask: Tensor) -> Tensor:
        """Unit sentence embeddings ``[B, E]`` of pose features ``[B, T, 543, 4]``."""
        return F.normalize(self.encoder(poses, mask).float(), dim=-1)

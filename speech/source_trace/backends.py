"""Back-ends: features [B, T, F] and frame counts [B] to utterance embeddings [B, embed_dim].

ResNet-18 adapted to spectrograms, an AASIST-style spectro-temporal graph-attention network, and the speaker
encoder's ECAPA-TDNN (speech.speaker, reused as it is).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speech.encoders.wav2vec2 import lengths_mask
from speech.source_trace.config import AasistConfig, BackendConfig, EcapaBackendConfig, ResNetConfig
from speech.speaker.config import EcapaConfig
from speech.speaker.model import EcapaTdnn


def conv_lens(lens: Tensor, strides: int) -> Tensor:
    """Frames left after ``strides`` stride-2 convs with kernel 3 and padding 1 (each ceil(L / 2))."""
    for _ in range(strides):
        lens = (lens + 1) // 2
    return lens.clamp_min(1)


def stats_pool(x: Tensor, lens: Tensor) -> Tensor:
    """Mean and standard deviation over the real frames: [B, C, T] -> [B, 2C]."""
    m = lengths_mask(lens.clamp(max=x.shape[-1]), x.shape[-1])[:, None].to(x.dtype)  # [B, 1, T]
    n = m.sum(-1).clamp_min(1)
    mean = (x * m).sum(-1) / n
    var = ((x - mean[..., None]).pow(2) * m).sum(-1) / n
    return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=1)


def keep_frames(x: Tensor, lens: Tensor) -> Tensor:
    """[B, C, F, T] maps with each clip's frames past ``lens`` set to 0: what a conv reads beyond the end of a clip
    alone (its zero padding), so a clip's output does not depend on the batch it is padded in."""
    return x * lengths_mask(lens.clamp(max=x.shape[-1]), x.shape[-1])[:, None, None].to(x.dtype)


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and a shortcut (1x1 conv where the shape changes); frames past each clip's end
    are zeroed after every conv, and its frame counts come out with the map."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                      if stride != 1 or c_in != c_out else nn.Identity())
        self.strides = int(stride == 2)

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        lens = conv_lens(lens, self.strides)
        h = keep_frames(F.relu(self.bn1(self.conv1(x))), lens)
        return keep_frames(F.relu(self.bn2(self.conv2(h)) + self.short(x)), lens), lens


def run_blocks(blocks: nn.ModuleList, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
    """A stack of BasicBlocks over a masked map and its frame counts."""
    x = keep_frames(x, lens)
    for block in blocks:
        x, lens = block(x, lens)
    return x, lens


class ResNetBackend(nn.Module):
    """ResNet-18 (He et al., 2016) on a one-channel [F, T] map, then statistics pooling over time.

    A 3x3 stride-2 stem replaces ImageNet's 7x7 conv and max-pool: a 60-band map has little to pool.
    """

    def __init__(self, cfg: ResNetConfig, feat_dim: int, embed_dim: int):
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        stages, c = [], w
        for i, n in enumerate(cfg.blocks):
            out = w * 2**i
            stages += [BasicBlock(c, out, 2 if i > 0 else 1)] + [BasicBlock(out, out, 1) for _ in range(n - 1)]
            c = out
        self.stages = nn.ModuleList(stages)
        self.strides = len(cfg.blocks)  # the stem and every stage after the first halve the map
        f = feat_dim
        for _ in range(self.strides):
            f = (f + 1) // 2
        self.fc = nn.Linear(2 * c * f, embed_dim)
        self.norm = nn.BatchNorm1d(embed_dim)

    def forward(self, feats: Tensor, lens: Tensor) -> Tensor:
        x = self.stem(keep_frames(feats.transpose(1, 2)[:, None], lens))
        x, lens = run_blocks(self.stages, x, conv_lens(lens, 1))  # [B, C, F', T']
        return self.norm(self.fc(stats_pool(x.flatten(1, 2), lens)))  # [B, C*F', T'] pooled


class GraphAttention(nn.Module):
    """Graph attention over fully connected nodes [B, N, D]; pair weights from the nodes' element-wise products."""

    def __init__(self, d_in: int, d_out: int, temperature: float):
        super().__init__()
        self.att_proj, self.att_weight = nn.Linear(d_in, d_out), nn.Linear(d_out, 1, bias=False)
        self.with_att, self.without_att = nn.Linear(d_in, d_out), nn.Linear(d_in, d_out)
        self.norm = nn.BatchNorm1d(d_out)
        self.temperature = temperature

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        pair = torch.tanh(self.att_proj(x[:, :, None] * x[:, None]))  # [B, N, N, D]
        logits = self.att_weight(pair).squeeze(-1) / self.temperature  # [B, N, N]
        att = F.softmax(logits.masked_fill(~valid[:, None], float("-inf")), dim=-1)  # padding nodes get no weight
        out = self.with_att(att @ x) + self.without_att(x)
        return F.selu(self.norm(out.transpose(1, 2)).transpose(1, 2))


class GraphPool(nn.Module):
    """Keeps the top ``ratio`` of each graph's real nodes by a learned sigmoid score, scaled by it (Gao and Ji's graph
    U-Net pool). Graphs of a batch keep different numbers of nodes: the kept ones come first, best first, and the
    returned mask marks them."""

    def __init__(self, d: int, ratio: float):
        super().__init__()
        self.score, self.ratio = nn.Linear(d, 1), ratio

    def forward(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        s = torch.sigmoid(self.score(x))  # [B, N, 1]
        keep = (valid.sum(1) * self.ratio).long().clamp_min(1)  # [B]: int(n * ratio), at least 1
        rank = s.squeeze(-1).masked_fill(~valid, -1.0)  # a sigmoid is > 0: padding ranks last
        idx = rank.topk(int(keep.max()), dim=1).indices  # [B, k]
        kept = torch.arange(idx.shape[1], device=x.device)[None] < keep[:, None]
        return torch.gather(x * s, 1, idx[..., None].expand(-1, -1, x.shape[-1])), kept


class HeteroGraphAttention(nn.Module):
    """AASIST's heterogeneous stacking layer, compact: spectral and temporal nodes attend to each other with one
    attention vector per pair type (s-s, t-t, s-t), and a master node attends to all of them."""

    def __init__(self, d: int, temperature: float):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.type_weights = nn.Parameter(torch.randn(3, d) * d**-0.5)
        self.master_att = nn.Linear(d, 1, bias=False)
        self.update, self.update_master = nn.Linear(d, d), nn.Linear(2 * d, d)
        self.temperature = temperature

    def forward(self, s: Tensor, t: Tensor, master: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``valid`` [B, N] marks the real nodes of ``cat([s, t])``; the others get no attention."""
        x = torch.cat([s, t], dim=1)  # [B, N, D]
        kind = torch.cat([torch.zeros(s.shape[1]), torch.ones(t.shape[1])]).long().to(x.device)
        pair_type = torch.where(kind[:, None] == kind[None], kind[:, None], torch.full_like(kind[:, None], 2))
        pair = torch.tanh(self.proj(x[:, :, None] * x[:, None]))  # [B, N, N, D]
        logits = (pair * self.type_weights[pair_type]).sum(-1) / self.temperature  # [B, N, N]
        logits = logits.masked_fill(~valid[:, None], float("-inf"))
        x = F.selu(self.update(F.softmax(logits, dim=-1) @ x) + x)
        m_logits = self.master_att(torch.tanh(x * master)).squeeze(-1) / self.temperature
        m_att = F.softmax(m_logits.masked_fill(~valid, float("-inf")), dim=-1)  # [B, N]
        master = master + F.selu(self.update_master(torch.cat([(m_att[..., None] * x).sum(1, keepdim=True),
                                                                 master], dim=-1)))
        return x[:, : s.shape[1]], x[:, s.shape[1] :], master


class AasistBackend(nn.Module):
    """AASIST-style back-end (Jung et al., 2022, arXiv:2110.01200): a residual conv encoder over [F, T], a spectral
    graph (one node per frequency row, max over time) and a temporal graph (one node per frame, max over frequency),
    graph attention and pooling on each, a heterogeneous layer over both with a master node, max/mean readout."""

    def __init__(self, cfg: AasistConfig, feat_dim: int, embed_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = 1
        for out in cfg.channels:
            layers += [BasicBlock(c, out, 2)]
            c = out
        self.encoder = nn.ModuleList(layers)
        self.strides = len(cfg.channels)
        f = feat_dim
        for _ in range(self.strides):
            f = (f + 1) // 2
        d = cfg.gat_dim
        self.spec_pos = nn.Parameter(torch.zeros(1, f, c))
        self.spec_in, self.temp_in = nn.Linear(c, d), nn.Linear(c, d)
        self.spec_gat = GraphAttention(d, d, cfg.temperature)
        self.temp_gat = GraphAttention(d, d, cfg.temperature)
        self.spec_pool, self.temp_pool = GraphPool(d, cfg.pool_ratio), GraphPool(d, cfg.pool_ratio)
        self.master = nn.Parameter(torch.randn(1, 1, d) * 0.1)
        self.hetero = HeteroGraphAttention(d, cfg.temperature)
        self.out = nn.Linear(5 * d, embed_dim)
        self.norm = nn.BatchNorm1d(embed_dim)

    def forward(self, feats: Tensor, lens: Tensor) -> Tensor:
        x, lens = run_blocks(self.encoder, feats.transpose(1, 2)[:, None], lens)  # [B, C, F', T'], 0 past the end
        x = x.abs()  # >= 0, so the padding's zeros never win a max
        spec = self.spec_in(x.amax(dim=3).transpose(1, 2) + self.spec_pos)  # [B, F', D]
        temp = self.temp_in(x.amax(dim=2).transpose(1, 2))  # [B, T', D]
        every = torch.ones(spec.shape[:2], dtype=torch.bool, device=x.device)
        spec, spec_valid = self.spec_pool(self.spec_gat(spec, every), every)
        t_valid = lengths_mask(lens.clamp(max=temp.shape[1]), temp.shape[1])  # [B, T']
        temp, t_valid = self.temp_pool(self.temp_gat(temp, t_valid), t_valid)
        spec, temp, master = self.hetero(spec, temp, self.master.expand(x.shape[0], -1, -1),
                                         torch.cat([spec_valid, t_valid], dim=1))
        t_mask = t_valid[..., None].to(temp.dtype)
        read = torch.cat([spec.amax(1), spec.mean(1), temp.masked_fill(~t_valid[..., None], float("-inf")).amax(1),
                          (temp * t_mask).sum(1) / t_mask.sum(1), master.squeeze(1)], dim=-1)
        return self.norm(self.out(read))


class EcapaBackend(nn.Module):
    """The speaker encoder's ECAPA-TDNN over the front-end's frames (speech.speaker.model.EcapaTdnn)."""

    def __init__(self, cfg: EcapaBackendConfig, feat_dim: int, embed_dim: int):
        super().__init__()
        self.ecapa = EcapaTdnn(EcapaConfig(**{**cfg.ecapa, "n_mels": feat_dim, "embed_dim": embed_dim}))

    def forward(self, feats: Tensor, lens: Tensor) -> Tensor:
        return self.ecapa(feats, lens)


def build_backend(cfg: BackendConfig, feat_dim: int, embed_dim: int) -> nn.Module:
    """The back-end named by ``cfg.kind``."""
    if isinstance(cfg, ResNetConfig):
        return ResNetBackend(cfg, feat_dim, embed_dim)
    if isinstance(cfg, AasistConfig):
        return AasistBackend(cfg, feat_dim, embed_dim)
    return EcapaBackend(cfg, feat_dim, embed_dim)

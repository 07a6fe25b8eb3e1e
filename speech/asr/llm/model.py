"""LLM-ASR network: conformer encoder, frame-stacking projector, causal byte-level decoder LM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.layers import Dropout
from speech.asr.llm.config import DecoderLMConfig, LLMASRConfig
from speech.asr.llm.tokens import ByteTokenizer, EncodedAudio
from speech.encoders.conformer import ConformerEncoder, _rotate
from speech.features import LogMel

KVCache = list[tuple[Tensor, Tensor]]
"""Per layer, keys and values [B, H, L, Dh] of every position seen so far."""


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention with rotary positions, a key padding mask and a KV cache."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)

    def forward(
        self, x: Tensor, pos: Tensor, key_mask: Tensor | None, past: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, t, d = x.shape
        if key_mask is None and past is not None:
            raise ValueError("decoding with a KV cache needs the key mask")
        dh = d // self.heads
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, dh).permute(2, 0, 3, 1, 4)  # [B, H, T, Dh]
        inv = 1.0 / (10_000 ** (torch.arange(0, dh // 2, device=x.device, dtype=torch.float32) / (dh // 2)))
        ang = pos[:, None, :, None].float() * inv  # [B, 1, T, Dh/2]
        cos, sin = ang.cos().to(q.dtype), ang.sin().to(q.dtype)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        drop = self.dropout if self.training else 0.0
        if key_mask is None:  # right-padded training batches: causality alone keeps padding out of real rows
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:
            n = k.shape[2]
            qi = torch.arange(n - t, n, device=x.device)[:, None]
            kj = torch.arange(n, device=x.device)[None]
            # Causal and not padding; a position always sees itself so a padding row never has all keys masked.
            mask = ((kj <= qi)[None] & key_mask[:, None, :]) | (kj == qi)[None]  # [B, T, N]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(b, t, d)), (k, v)


class DecoderBlock(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, cfg: DecoderLMConfig):
        super().__init__()
        d = cfg.d_model
        self.norm1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, cfg.num_heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_mult * d), nn.GELU(), nn.Linear(cfg.ff_mult * d, d))
        self.drop = Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, pos: Tensor, key_mask: Tensor | None, past: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        y, kv = self.attn(self.norm1(x), pos, key_mask, past)
        x = x + self.drop(y)
        return x + self.drop(self.ff(self.norm2(x))), kv


class DecoderLM(nn.Module):
    """Decoder-only transformer LM with tied input/output embeddings (Radford et al., 2019)."""

    def __init__(self, cfg: DecoderLMConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(
        self, x: Tensor, pos: Tensor, key_mask: Tensor | None, past: KVCache | None = None
    ) -> tuple[Tensor, KVCache]:
        """Input embeddings [B, T, D] to logits [B, T, V].

        ``key_mask`` [B, N] (True = real) covers cached + new positions; ``None`` means right padding only.
        """
        cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, pos, key_mask, past[i] if past is not None else None)
            cache.append(kv)
        return self.norm(x) @ self.embed.weight.T, cache


class Projector(nn.Module):
    """Stack ``k`` consecutive encoder frames, then a 2-layer MLP into the LM width."""

    def __init__(self, d_in: int, d_out: int, stack: int, mult: int):
        super().__init__()
        self.stack = stack
        self.mlp = nn.Sequential(nn.Linear(stack * d_in, mult * d_out), nn.GELU(), nn.Linear(mult * d_out, d_out))

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        b, t, d = x.shape
        x = x * (torch.arange(t, device=x.device)[None] < lens[:, None])[..., None].to(x.dtype)
        pad = -t % self.stack
        x = F.pad(x, (0, 0, 0, pad)).reshape(b, (t + pad) // self.stack, self.stack * d)  # [B, T/k, k*D]
        return self.mlp(x), (lens + self.stack - 1) // self.stack


def ctc_compress(hidden: Tensor, lens: Tensor, logits: Tensor, blank: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Encoder frames [B, T, D] to one mean vector per CTC label run [B, S, D], run counts [B] and the label
    of each run [B, S] (-1 past the end, and for a kept least-blank frame).

    Frames whose best label is blank are dropped and consecutive frames with one label are averaged
    (Gaido et al., 2021), so an utterance becomes about as long as its transcript and the decoder sees a
    near-monotonic, near one-to-one audio prompt (the CTC prompts of Wu et al., 2023). An utterance with
    no non-blank frame keeps its least-blank frame.
    """
    b, t, d = hidden.shape
    valid = torch.arange(t, device=hidden.device)[None] < lens[:, None]
    best = logits.argmax(-1)
    keep = valid & (best != blank)
    empty = ~keep.any(1) & (lens > 0)
    if empty.any():
        least_blank = logits.log_softmax(-1)[..., blank].masked_fill(~valid, float("inf")).argmin(1)
        keep[empty, least_blank[empty]] = True
        best = best.clone()
        best[empty, least_blank[empty]] = -1
    prev_keep = F.pad(keep, (1, 0))[:, :-1]
    prev_best = F.pad(best, (1, 0), value=-2)[:, :-1]
    start = keep & ~(prev_keep & (prev_best == best))
    counts = start.sum(1)
    n = max(int(counts.max()), 1)
    slot = torch.where(keep, start.cumsum(1) - 1, n)  # frames not kept go to a spare slot, dropped below
    sums = hidden.new_zeros(b, n + 1, d).scatter_add_(1, slot[..., None].expand(b, t, d), hidden)
    num = hidden.new_zeros(b, n + 1).scatter_add_(1, slot, keep.to(hidden.dtype))
    labels = best.new_full((b, n + 1), -1).scatter_(1, slot, best.masked_fill(~keep, -1))
    return sums[:, :n] / num[:, :n, None].clamp_min(1), counts, labels[:, :n]


class LLMASR(nn.Module):
    """Speech encoder + projector + decoder LM, trained on interleaved audio/text sequences.

    The "speech LLM" recipe of SALMONN / Qwen-Audio (Tang et al., 2023; Chu et al., 2023) at a small
    scale, with a language token after ``<lid>`` (as in Whisper, Radford et al., 2022) and in-context
    examples before the query (as in Omnilingual ASR's zero-shot model).
    """

    def __init__(self, cfg: LLMASRConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = ByteTokenizer(cfg.langs)
        self.frontend = LogMel(cfg.sample_rate, cfg.encoder.n_mels)
        self.encoder = ConformerEncoder(cfg.encoder)
        self.ctc_head = nn.Linear(cfg.encoder.d_model, cfg.ctc_vocab) if cfg.ctc_vocab else None
        self.projector = Projector(cfg.encoder.d_model, cfg.lm.d_model, cfg.stack, cfg.projector_mult)
        self.lm = DecoderLM(cfg.lm, len(self.tok))

    def encode_audio(self, wave: Tensor, wave_lens: Tensor) -> EncodedAudio:
        """Waveforms [N, S] to audio embeddings (``project``)."""
        feats, lens = self.frontend(wave, wave_lens)
        return self.project(*self.encoder(feats, lens))

    def project(self, hidden: Tensor, lens: Tensor) -> EncodedAudio:
        """Encoder frames [N, T, De] to audio embeddings [N, A, D] and their counts [N].

        With a CTC head the frames are compressed first, and each embedding gets the character offset in
        the transcript where its label would be written: the i-th label run of the CTC hypothesis is its
        i-th character (one label is one character).
        """
        offsets = None
        if self.ctc_head is not None:
            with torch.no_grad():
                hidden, lens, _ = ctc_compress(hidden, lens, self.ctc_head(hidden))
            offsets = torch.arange(hidden.shape[1], device=hidden.device).expand(hidden.shape[0], -1)
        audio, alens = self.projector(hidden, lens)
        return EncodedAudio(audio, alens, offsets)

    def embed(self, ids: Tensor, clip: Tensor, frame: Tensor, audio: Tensor) -> Tensor:
        """Token ids [B, L] (``AUDIO`` = -1 where audio goes) with audio embeddings [N, A, D] spliced in."""
        x = self.lm.embed(ids.clamp_min(0))  # [B, L, D]
        a = audio[clip.clamp_min(0), frame.clamp_min(0)].to(x.dtype)  # [B, L, D]
        return torch.where((ids < 0)[..., None], a, x)

    def forward(
        self, x: Tensor, pos: Tensor, key_mask: Tensor | None, past: KVCache | None = None
    ) -> tuple[Tensor, KVCache]:
        """Embedded sequences [B, T, D] to next-token logits [B, T, V] (float32) and the KV cache."""
        logits, cache = self.lm(x, pos, key_mask, past)
        return logits.float(), cache

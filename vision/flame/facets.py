"""FLAME's text side: multifaceted PromptEOL prompts read out of a frozen causal LLM in one forward pass.

FLAME (Cao et al., 2024, "FLAME: Frozen Large Language Models Enable Data-Efficient Language-Image Pre-training")
wraps a caption in a prompt, then asks K short questions ("... means in one word:\"") about it; the last hidden state
of each question is one facet embedding. Facet-decoupled attention lays out ``[prefix with caption][facet 1]...
[facet K]`` and masks it so every facet sees the prefix and itself only, with positions that continue right after
the prefix: each facet gets exactly the state a separate forward pass would give it, for the price of one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

FACET_SETS = Path(__file__).resolve().parents[2] / "configs" / "flame" / "facets.yaml"
"""The named prompt sets (``short``: 3 facets, ``long``: 7, ``single``: 1)."""

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class FacetPrompts:
    """A prompt set: the caption's preamble, shared by every facet, then one read-out prompt per facet."""

    prefix: str
    """Holds ``{caption}``; it ends where the facet prompts begin."""
    facets: tuple[tuple[str, str], ...]
    """(facet name, prompt) pairs in read-out order; each prompt's last token is read out."""
    name: str = "custom"
    """The set's name, for messages; not part of its identity (``identity``)."""

    def __post_init__(self) -> None:
        if "{caption}" not in self.prefix:
            raise ValueError(f"facet set {self.name!r}: prefix must contain '{{caption}}': {self.prefix!r}")
        if not self.facets or any(not p.strip() for _, p in self.facets):
            raise ValueError(f"facet set {self.name!r}: needs at least one facet, each with a non-empty prompt")

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.facets]

    def __len__(self) -> int:
        return len(self.facets)

    def identity(self) -> dict[str, Any]:
        """What changes the embeddings: the texts and the facet order (recorded in an embedding cache)."""
        return {"prefix": self.prefix, "facets": [[n, p] for n, p in self.facets]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "custom") -> FacetPrompts:
        """``{"prefix": ..., "facets": {name: prompt, ...}}`` (a mapping or a list of pairs)."""
        facets = d.get("facets")
        pairs = list(facets.items()) if isinstance(facets, dict) else [tuple(p) for p in facets or []]
        return cls(prefix=str(d.get("prefix", "")), facets=tuple((str(n), str(p)) for n, p in pairs), name=name)


def facet_sets(path: str | Path = FACET_SETS) -> dict[str, FacetPrompts]:
    """Every named set of a facets yaml."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of facet set names to sets")
    return {str(k): FacetPrompts.from_dict(v, name=str(k)) for k, v in raw.items()}


def facet_set(name: str, path: str | Path = FACET_SETS) -> FacetPrompts:
    """The named prompt set: ``short`` (3 facets), ``long`` (7) or ``single`` (1)."""
    sets = facet_sets(path)
    if name not in sets:
        raise KeyError(f"unknown facet set {name!r} in {path}; known: {', '.join(sets)}")
    return sets[name]


def clean_caption(text: str) -> str:
    """The caption sits inside double quotes, so its own double quotes become single ones."""
    return " ".join(text.replace('"', "'").split())


@dataclass
class FacetBatch:
    """One padded forward pass: the shared part left-padded, then every facet prompt at the same columns."""

    input_ids: Tensor
    """[B, T]; T = longest prefix + the facet prompts' lengths."""
    position_ids: Tensor
    """[B, T]; each facet's positions start right after its row's real prefix."""
    allowed: Tensor
    """[B, T, T] bool, query x key: causal, no padding keys, no other facet's keys; every row keeps its diagonal."""
    read_out: Tensor
    """[K] column of each facet's last token."""


def facet_batch(shared: list[list[int]], facets: list[list[int]], pad_id: int) -> FacetBatch:
    """Lay out ``[pad][prefix b][facet 1]...[facet K]`` for every row and build its decoupled mask."""
    b, s = len(shared), max(len(x) for x in shared)
    lengths = torch.tensor([len(f) for f in facets])  # [K]
    t = s + int(lengths.sum())
    ids = torch.full((b, t), pad_id, dtype=torch.long)
    real = torch.zeros(b, t, dtype=torch.bool)
    for i, x in enumerate(shared):
        ids[i, s - len(x) : s] = torch.tensor(x, dtype=torch.long)
        real[i, s - len(x) : s] = True
    ids[:, s:] = torch.tensor([tok for f in facets for tok in f], dtype=torch.long)
    real[:, s:] = True
    seg = torch.cat([torch.zeros(s, dtype=torch.long), torch.repeat_interleave(torch.arange(1, len(facets) + 1),
                                                                              lengths)])  # [T]: 0 prefix, k facet k
    starts = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])  # [K]
    local = torch.arange(t - s) - torch.repeat_interleave(starts, lengths)  # [F] position inside its facet
    n_real = real[:, :s].sum(1, keepdim=True)  # [B, 1]
    pos = torch.cat([(real[:, :s].long().cumsum(1) - 1).clamp(min=0), n_real + local[None]], dim=1)  # [B, T]
    q = torch.arange(t)
    causal = q[None, :] <= q[:, None]  # [T, T]
    same = (seg[None, :] == 0) | (seg[None, :] == seg[:, None])  # key in the prefix or in the query's own facet
    allowed = (causal & same)[None] & real[:, None, :]  # [B, T, T]
    # A padding query must keep one key: a fully masked row is NaN under -inf masks, and 0 * NaN reaches real rows.
    allowed |= torch.eye(t, dtype=torch.bool)[None]
    return FacetBatch(ids, pos, allowed, s + lengths.cumsum(0) - 1)


class FacetEncoder(nn.Module):
    """A frozen local causal LM (any transformers directory) as FLAME's multi-facet caption encoder."""

    def __init__(self, model_dir: str | Path, prompts: FacetPrompts | str = "short", max_caption_tokens: int = 128,
                 dtype: str = "float32", device: str | torch.device = "cpu", normalize: bool = True):
        super().__init__()
        if not (Path(model_dir) / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir}: not a model directory (no config.json there)")
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r}: expected one of {', '.join(DTYPES)}")
        self.model_dir, self.dtype = str(model_dir), dtype
        self.max_caption_tokens, self.normalize = max_caption_tokens, normalize
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        lm = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=DTYPES[dtype])
        # Keep the decoder only: hidden states are read, never logits, and the head is a small LM's largest matrix.
        self.model = lm.base_model.to(device)
        config: Any = lm.config
        self.hidden = int(getattr(config, "hidden_size", None) or config.d_model)
        self.model.requires_grad_(False).eval()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.pad_id = int(pad or 0)  # padding is masked out, so any id serves
        self.set_prompts(facet_set(prompts) if isinstance(prompts, str) else prompts)

    def set_prompts(self, prompts: FacetPrompts) -> FacetEncoder:
        """Switch to another prompt set; the loaded LLM stays."""
        self.prompts = prompts
        self.facet_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for _, p in prompts.facets]
        if any(not ids for ids in self.facet_ids):
            raise ValueError(f"facet set {prompts.name!r}: a facet prompt tokenises to nothing")
        return self

    def train(self, mode: bool = True) -> FacetEncoder:
        super().train(mode)
        self.model.eval()  # frozen: Lightning's .train() must not switch dropout on
        return self

    @property
    def dim(self) -> int:
        return self.hidden

    @property
    def num_facets(self) -> int:
        return len(self.prompts)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def shared_ids(self, captions: list[str]) -> list[list[int]]:
        """Token ids of each caption inside the prefix (with the tokenizer's BOS), the caption cut first."""
        n = self.max_caption_tokens
        cut = [self.tokenizer(clean_caption(c), add_special_tokens=False)["input_ids"] for c in captions]
        texts = [str(self.tokenizer.decode(ids[:n])) if len(ids) > n else clean_caption(c)
                 for c, ids in zip(captions, cut)]
        return [self.tokenizer(self.prompts.prefix.replace("{caption}", t))["input_ids"] for t in texts]

    @torch.no_grad()
    def forward(self, captions: list[str]) -> Tensor:
        """Facet embeddings ``[B, K, D]`` in float32 (unit vectors when ``normalize``)."""
        if not captions:
            return torch.empty(0, self.num_facets, self.dim)
        fb = facet_batch(self.shared_ids(captions), self.facet_ids, self.pad_id)
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros(fb.allowed.shape, dtype=dtype).masked_fill(~fb.allowed, torch.finfo(dtype).min)
        h = self.model(input_ids=fb.input_ids.to(self.device), position_ids=fb.position_ids.to(self.device),
                       attention_mask=mask[:, None].to(self.device), use_cache=False).last_hidden_state  # [B, T, D]
        out = h[:, fb.read_out.to(self.device)].float()  # [B, K, D]
        return F.normalize(out, dim=-1) if self.normalize else out

    def encode(self, captions: list[str], batch_size: int = 32) -> Tensor:
        """``forward`` in batches of ``batch_size`` captions, on the CPU."""
        parts = [self(captions[i : i + batch_size]).cpu() for i in range(0, len(captions), batch_size)]
        return torch.cat(parts) if parts else self(captions)

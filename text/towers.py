"""Shared text towers: a bidirectional HF encoder with pooling, a frozen LLM read out at its last token, or the
suite's own sentence encoder.

In the manner of open_clip's ``HFTextEncoder``: one builder chosen by an explicit ``kind``, one interface
(``encode``, ``forward``, ``lock``, ``output_dim``), used by CLIP-style training, music retrieval, sign
translation and distillation. Checkpoints are always local directories; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer, BatchEncoding, PreTrainedTokenizerBase
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

from common.io import read_json_object
from common.registry import Registry

POOLINGS = ("mean", "cls", "last")


@dataclass
class TextTowerConfig:
    """Which text tower to build, from which local checkpoint, and how to read one vector out per text."""

    kind: str
    """``"hf_encoder"`` (bidirectional encoder plus pooling), ``"llm_embedder"`` (decoder-only LM, PromptEOL) or
    ``"sentence_encoder"`` (``text.sentence_encoder``, this suite's own)."""
    path: str
    """Local directory holding the model and its tokenizer."""
    pooling: str = "mean"
    """hf_encoder read-out: ``"mean"`` over real tokens, ``"cls"`` (first token) or ``"last"`` (last real token)."""
    proj_dim: int | None = None
    """Width of an optional linear projection on top; ``None`` keeps the model's hidden size."""
    prompt: str = 'This sentence : "{text}" means in one word:"'
    """llm_embedder template (PromptEOL, Jiang et al. 2023); the state after it summarises ``{text}``."""
    max_length: int = 128
    """Longest text in tokens; an llm_embedder cuts the text before wrapping it, so the prompt always survives."""
    frozen: bool = True
    """Freeze the transformer; the projection, being freshly initialised, stays trainable."""


def last_real_index(mask: Tensor) -> Tensor:
    """Position of the last real token in each row of an attention mask, for right or left padding."""
    return mask.shape[1] - 1 - mask.flip(1).int().argmax(1)  # [B]


def first_real_index(mask: Tensor) -> Tensor:
    """Position of the first real token in each row of an attention mask, for right or left padding."""
    return mask.int().argmax(1)  # [B]


def find_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks: the longest ``nn.ModuleList`` in the model, whatever the architecture calls it."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"no nn.ModuleList of transformer layers found in {type(model).__name__}")
    return max(lists, key=len)


class TextTower(nn.Module):
    """Common body of every kind: loading, projection, locking, batched inference.

    Subclasses define ``tokenize`` (texts -> padded batch), ``embed`` (batch -> ``[B, H]``) and ``recognises``
    (which model directories they load), and register in ``TEXT_TOWERS``.
    """

    @classmethod
    def recognises(cls, config: dict[str, Any]) -> bool:
        """Whether a model directory with this ``config.json`` holds a model of this kind."""
        return False

    def __init__(self, cfg: TextTowerConfig):
        super().__init__()
        if not Path(cfg.path).is_dir():
            raise FileNotFoundError(f"text tower checkpoint directory does not exist: {cfg.path}")
        self.cfg = cfg
        self.tokenizer, self.model, hidden = self.load(cfg.path)
        self.proj: nn.Module = nn.Linear(hidden, cfg.proj_dim, bias=False) if cfg.proj_dim else nn.Identity()
        self._output_dim = cfg.proj_dim or hidden
        if cfg.frozen:
            self.lock(0)

    def load(self, path: str) -> tuple[Any, nn.Module, int]:
        """Tokenizer, transformer and hidden width from a local transformers directory."""
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
        config: Any = model.config
        return tokenizer, model, int(getattr(config, "hidden_size", None) or config.d_model)

    @property
    def output_dim(self) -> int:
        """Width of one embedding."""
        return self._output_dim

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def backbone_frozen(self) -> bool:
        """True when no transformer parameter is trainable."""
        return not any(p.requires_grad for p in self.model.parameters())

    def lock(self, unlocked_layers: int = 0) -> TextTower:
        """Freeze the transformer except its last ``unlocked_layers`` blocks; the projection stays trainable."""
        self.model.requires_grad_(False)
        if unlocked_layers > 0:
            layers = find_layers(self.model)
            for layer in layers[max(len(layers) - unlocked_layers, 0) :]:
                layer.requires_grad_(True)
        self.proj.requires_grad_(True)
        return self.train(self.training)

    def train(self, mode: bool = True) -> TextTower:
        super().train(mode)
        if self.backbone_frozen:
            self.model.eval()  # Lightning calls .train() on everything; a frozen tower must keep dropout off
        return self

    def tokenize(self, texts: list[str]) -> BatchEncoding:
        """Texts to a padded batch of ``input_ids`` and ``attention_mask``."""
        raise NotImplementedError

    def embed(self, batch: BatchEncoding) -> Tensor:
        """A padded batch to one un-projected vector per text, ``[B, H]``."""
        raise NotImplementedError

    def forward(self, texts: list[str], lang: str | None = None) -> Tensor:
        """Embeddings with gradients, for training; ``lang`` is reserved for language-conditioned towers."""
        batch = self.tokenize(texts).to(self.device)
        return self.proj(self.embed(batch))  # [B, D]

    @torch.no_grad()
    def encode(self, texts: list[str], lang: str | None = None, batch_size: int = 32) -> Tensor:
        """Float32 embeddings ``[B, D]`` for inference, in eval mode and without gradients."""
        if not texts:
            return torch.empty(0, self.output_dim)
        was_training = self.training
        self.eval()
        try:
            out = [self(texts[i : i + batch_size], lang).float() for i in range(0, len(texts), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out)  # [B, D]


def _transformers_causal(config: dict[str, Any]) -> bool | None:
    """None when ``config`` is not a transformers model's; else whether it is a causal LM."""
    if config.get("model_type") not in CONFIG_MAPPING_NAMES:
        return None
    return any(str(a).endswith("ForCausalLM") for a in config.get("architectures") or [])


TEXT_TOWERS: Registry[type[TextTower]] = Registry("text tower")
"""Text tower kinds by name; ``detect_tower_kind`` asks each whether it recognises a model directory."""


@TEXT_TOWERS.register("hf_encoder")
class HFTextEncoder(TextTower):
    """A bidirectional transformer encoder (BERT, XLM-R: Conneau et al., 2020) pooled over its attention mask."""

    @classmethod
    def recognises(cls, config: dict[str, Any]) -> bool:
        return _transformers_causal(config) is False

    def __init__(self, cfg: TextTowerConfig):
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {cfg.pooling!r}; known poolings: {', '.join(POOLINGS)}")
        super().__init__(cfg)

    def tokenize(self, texts: list[str]) -> BatchEncoding:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.cfg.max_length, return_tensors="pt")

    def embed(self, batch: BatchEncoding) -> Tensor:
        mask = batch["attention_mask"]  # [B, T]
        h = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state  # [B, T, H]
        if self.cfg.pooling == "mean":
            m = mask.unsqueeze(-1).to(h.dtype)  # [B, T, 1]
            return (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        idx = first_real_index(mask) if self.cfg.pooling == "cls" else last_real_index(mask)
        return h[torch.arange(h.shape[0], device=h.device), idx]


@TEXT_TOWERS.register("llm_embedder")
class LLMEmbedder(TextTower):
    """A decoder-only LM as a sentence embedder: PromptEOL (Jiang et al., 2023), "Scaling Sentence Embeddings
    with Large Language Models". Each text is wrapped in a prompt asking for one word, and the final hidden state
    of the last real token is the embedding. Right and left padding both work: positions come from the mask.
    """

    @classmethod
    def recognises(cls, config: dict[str, Any]) -> bool:
        return _transformers_causal(config) is True

    def __init__(self, cfg: TextTowerConfig):
        if "{text}" not in cfg.prompt:
            raise ValueError(f"llm_embedder prompt must contain '{{text}}': {cfg.prompt!r}")
        super().__init__(cfg)
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"tokenizer in {cfg.path} has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def tokenize(self, texts: list[str]) -> BatchEncoding:
        # Cut the text, not the prompt: the read-out token is the prompt's last one.
        n = self.cfg.max_length
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        cut = self.tokenizer.batch_decode([i[:n] for i in ids])
        texts = [c if len(i) > n else t for t, i, c in zip(texts, ids, cut)]
        prompts = [self.cfg.prompt.replace("{text}", t) for t in texts]
        return self.tokenizer(prompts, padding=True, return_tensors="pt")

    def embed(self, batch: BatchEncoding) -> Tensor:
        mask = batch["attention_mask"]  # [B, T]
        pos = (mask.long().cumsum(1) - 1).clamp(min=0)  # left padding must not shift the real tokens' positions
        out = self.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=pos, use_cache=False)
        h = out.last_hidden_state  # [B, T, H]
        return h[torch.arange(h.shape[0], device=h.device), last_real_index(mask)]


@TEXT_TOWERS.register("sentence_encoder")
class SentenceEncoderTower(TextTower):
    """This suite's own sentence encoder (``text.sentence_encoder``) behind the tower interface.

    Its output is already a unit vector; an optional projection on top is re-normalised.
    """

    @classmethod
    def recognises(cls, config: dict[str, Any]) -> bool:
        from text.sentence_encoder import MODEL_TYPE

        return config.get("model_type") == MODEL_TYPE

    def load(self, path: str) -> tuple[Any, nn.Module, int]:
        from text.sentence_encoder import from_pretrained

        model, tokenizer = from_pretrained(path)
        self.model_max_length = model.cfg.max_length
        return tokenizer, model, model.cfg.embed_dim

    def forward(self, texts: list[str], lang: str | None = None) -> Tensor:
        ids, mask = self.tokenizer.batch(texts, lang, min(self.cfg.max_length, self.model_max_length))
        emb = self.model(ids.to(self.device), mask.to(self.device))  # [B, E]
        return emb if isinstance(self.proj, nn.Identity) else F.normalize(self.proj(emb), dim=-1)  # [B, D]


def detect_tower_kind(model_dir: str | Path) -> str:
    """The one registered kind that recognises ``<model_dir>/config.json``; none or several is a clear error."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json there")
    config = read_json_object(path)
    kinds = [k for k in TEXT_TOWERS if TEXT_TOWERS.get(k).recognises(config)]
    if len(kinds) != 1:
        found = f"several kinds recognise it ({', '.join(kinds)})" if kinds else "no text tower kind recognises it"
        raise ValueError(f"{path} (model_type {config.get('model_type')!r}): {found}; "
                         f"name one with kind= ({', '.join(TEXT_TOWERS)})")
    return kinds[0]


def build_text_tower(cfg: TextTowerConfig) -> TextTower:
    """The tower named by ``cfg.kind``, loaded from the local directory ``cfg.path``."""
    return TEXT_TOWERS.get(cfg.kind)(cfg)

"""Per-language adapters for a frozen CTC model: LoRA deltas on encoder linears plus head rows for new characters."""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from common import hub
from speech.asr.config import SpecAugmentConfig
from speech.asr.hub import CTC_TYPES, VOCAB
from speech.features import SpecAugment
from text.char_vocab import CharVocab


@dataclass
class AdapterConfig:
    """Shape of every language's adapter; one config per adapted model."""

    rank: int = 8
    """Rank of each LoRA delta."""
    alpha: float = 16.0
    """LoRA scale numerator: a delta is multiplied by ``alpha / rank``."""
    targets: list[str] | None = None
    """Name suffixes of the encoder's ``nn.Linear`` modules that get a LoRA delta (None: every one)."""
    layers: list[int] | None = None
    """Encoder blocks to adapt, by index (None: all, and linears outside the blocks too)."""
    head_lora: bool = True
    """Also give the head's existing rows a low-rank delta."""
    specaug: SpecAugmentConfig = field(
        default_factory=lambda: SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=0.04))
    """Masking applied to the frozen front-end's features while adapters train."""


class LoRA(nn.Module):
    """Low-rank delta ``x A^T B^T * alpha / r`` (Hu et al., 2021); B starts at zero so the delta starts at zero."""

    def __init__(self, d_in: int, d_out: int, rank: int, alpha: float):
        super().__init__()
        self.a = nn.Parameter(torch.empty(rank, d_in))
        self.b = nn.Parameter(torch.zeros(d_out, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: Tensor) -> Tensor:
        return (x @ self.a.t()) @ self.b.t() * self.scale


class LanguageAdapter(nn.Module):
    """One language's LoRA deltas and its head rows for characters the base model lacks."""

    new_ids: Tensor

    def __init__(self, targets: dict[str, nn.Linear], head: nn.Linear, new_ids: Sequence[int], cfg: AdapterConfig):
        super().__init__()
        # ModuleDict keys may not contain dots.
        self.lora = nn.ModuleDict({
            _key(name): LoRA(lin.in_features, lin.out_features, cfg.rank, cfg.alpha) for name, lin in targets.items()
        })
        self.head_lora = LoRA(head.in_features, head.out_features, cfg.rank, cfg.alpha) if cfg.head_lora else None
        self.rows = nn.Linear(head.in_features, len(new_ids))
        self.register_buffer("new_ids", torch.tensor(list(new_ids), dtype=torch.long))

    def logits(self, head: nn.Linear, hidden: Tensor) -> Tensor:
        """Base rows (plus their delta) then this language's new rows: [B, T, V0 + N]."""
        old = head(hidden)
        if self.head_lora is not None:
            old = old + self.head_lora(hidden)
        return torch.cat([old, self.rows(hidden)], dim=-1)


def _key(name: str) -> str:
    return name.replace(".", "__")


def base_letter(ch: str) -> str:
    """The letter under a diacritic (``ş`` -> ``s``, ``ğ`` -> ``g``); Turkish dotless ``ı`` -> ``i``."""
    if ch == "ı":
        return "i"
    return unicodedata.normalize("NFD", ch)[0]


class AdaptedCTCModel(nn.Module):
    """A frozen CTC model with per-language adapters, as MMS adds languages (Pratap et al., 2023).

    ``forward(wave, wave_lens, langs)`` runs the base network once; items whose language has an
    adapter get its LoRA deltas (and its head rows), all others take the untouched base path, so a
    base language's log-probabilities are bit-identical to the base model's. Without a language
    hint an item takes the base path: it can't emit characters the base model never had.
    Output columns follow the extended vocabulary; a character outside an item's route is -inf.
    """

    def __init__(self, base: nn.Module, vocab_size: int, cfg: AdapterConfig | None = None):
        super().__init__()
        if not isinstance(getattr(base, "encoder", None), nn.Module) or not isinstance(getattr(base, "head", None),
                                                                                       nn.Linear):
            raise TypeError(f"{type(base).__name__}: only CTC models with an .encoder and a linear .head adapt")
        self.base = base
        self.cfg = cfg or AdapterConfig()
        self.vocab_size = vocab_size
        self.adapters = nn.ModuleDict()
        self.specaug = SpecAugment(**vars(self.cfg.specaug))
        for p in self.base.parameters():
            p.requires_grad_(False)
        self._route: list[tuple[LanguageAdapter, Tensor]] = []
        self._hidden: Tensor | None = None
        self._targets = self._find_targets()
        for name, lin in self._targets.items():
            lin.register_forward_hook(self._lora_hook(name))
        if isinstance(getattr(base, "frontend", None), nn.Module):  # log-mel models: mask the features
            cast(nn.Module, base.frontend).register_forward_hook(self._specaug_hook)
        self.head.register_forward_hook(self._capture_hook)

    @property
    def head(self) -> nn.Linear:
        """The base model's (frozen) character head."""
        return cast(nn.Linear, self.base.head)

    @property
    def base_vocab_size(self) -> int:
        return self.head.out_features

    def _find_targets(self) -> dict[str, nn.Linear]:
        found: dict[str, nn.Linear] = {}
        for name, mod in cast(nn.Module, self.base.encoder).named_modules():
            if not isinstance(mod, nn.Linear):
                continue
            if self.cfg.targets is not None and not any(name.endswith(t) for t in self.cfg.targets):
                continue
            layer = next((int(p) for p in name.split(".") if p.isdigit()), None)  # blocks.3.attn.qkv -> 3
            if self.cfg.layers is None or layer in self.cfg.layers:
                found[f"encoder.{name}"] = mod
        if not found:
            raise ValueError(f"no encoder linear matches targets {self.cfg.targets} in layers {self.cfg.layers}")
        return found

    def add_language(self, lang: str, new_ids: Sequence[int], vocab: CharVocab | None = None) -> LanguageAdapter:
        """Create (or replace) ``lang``'s adapter; new rows start as copies of their base letters' rows."""
        if any(i < self.base_vocab_size or i >= self.vocab_size for i in new_ids):
            raise ValueError(f"new character ids must lie in [{self.base_vocab_size}, {self.vocab_size})")
        ad = LanguageAdapter(self._targets, self.head, new_ids, self.cfg)
        ad.to(self.head.weight.device)
        if vocab is not None:
            with torch.no_grad():
                for row, i in enumerate(new_ids):
                    src = vocab.index.get(base_letter(vocab.tokens[i]), vocab.unk_id)
                    if src < self.base_vocab_size:
                        ad.rows.weight[row] = self.head.weight[src]
                        # A little below its base letter, so the old letter stays preferred until trained.
                        ad.rows.bias[row] = self.head.bias[src] - 1.0
        self.adapters[lang] = ad
        return ad

    def adapter_parameters(self, langs: Sequence[str] | None = None) -> Iterator[nn.Parameter]:
        """Trainable parameters of the given languages' adapters (all adapters when None)."""
        for lang, ad in self.adapters.items():
            if langs is None or lang in langs:
                yield from ad.parameters()

    # Hooks: the base network stays a plain module; routing lives here.
    def _lora_hook(self, name: str) -> Any:
        key = _key(name)

        def hook(module: nn.Module, inputs: tuple[Tensor, ...], out: Tensor) -> Tensor:
            for ad, idx in self._route:
                out = out.index_add(0, idx, ad.lora[key](inputs[0][idx]))  # only the routed items change
            return out

        return hook

    def _specaug_hook(self, module: nn.Module, inputs: Any, out: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        if not self.training or not self._route:
            return out
        feats, lens = out
        return self.specaug(feats, lens), lens

    def _capture_hook(self, module: nn.Module, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        self._hidden = inputs[0]

    @contextmanager
    def _routing(self, route: list[tuple[LanguageAdapter, Tensor]]) -> Iterator[None]:
        self._route = route
        try:
            yield
        finally:
            self._route, self._hidden = [], None

    def forward(
        self, wave: Tensor, wave_lens: Tensor, langs: Sequence[str | None] | None = None
    ) -> tuple[Tensor, Tensor]:
        b = wave.shape[0]
        if langs is not None and len(langs) != b:
            raise ValueError(f"got {len(langs)} language hints for a batch of {b}")
        route: list[tuple[LanguageAdapter, Tensor]] = []
        for lang in dict.fromkeys(langs or []):
            if lang is not None and lang in self.adapters:
                idx = torch.tensor([i for i, x in enumerate(langs or []) if x == lang], device=wave.device)
                route.append((cast(LanguageAdapter, self.adapters[lang]), idx))
        with self._routing(route):
            base_logp, lens = self.base(wave, wave_lens)  # [B, T, V0]
            hidden = self._hidden  # [B, T, D], the head's input
        out = base_logp.new_full((*base_logp.shape[:2], self.vocab_size), float("-inf"))
        out[..., : self.base_vocab_size] = base_logp
        for ad, idx in route:
            assert hidden is not None
            logp = ad.logits(self.head, hidden[idx]).float().log_softmax(-1)  # [b, T, V0 + N]
            sub = logp.new_full((len(idx), logp.shape[1], self.vocab_size), float("-inf"))
            sub[..., : self.base_vocab_size] = logp[..., : self.base_vocab_size]
            sub[..., ad.new_ids] = logp[..., self.base_vocab_size:]
            out = out.index_copy(0, idx, sub)
        return out, lens


MODEL_TYPE = "ctc_adapted"


def save_adapted(model: AdaptedCTCModel, vocab: CharVocab, base_config: dict[str, Any],
                 out_dir: str | os.PathLike[str]) -> Path:
    """A normal model directory: config.json (base config + adapters), model.safetensors, vocab.json."""
    if len(vocab) != model.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} tokens but the model {model.vocab_size}")
    base_langs = [x for x in base_config.get("langs", []) if x not in model.adapters]
    config = {
        "vocab_size": model.vocab_size, "base": base_config, "adapter": asdict(model.cfg),
        "languages": {k: cast(LanguageAdapter, ad).new_ids.tolist() for k, ad in model.adapters.items()},
        "langs": sorted([*base_langs, *model.adapters]),
    }
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, config=config, files={"vocab": vocab})


def build_base(base_config: dict[str, Any]) -> nn.Module:
    """The base network of a config.json dict, through the hub's registry."""
    kind = base_config.get("model_type")
    if kind == MODEL_TYPE or kind not in CTC_TYPES:
        raise ValueError(f"an adapted model needs a plain CTC base model, got model_type {kind!r}")
    return hub.MODEL_TYPES.get(str(kind)).build(base_config)


@hub.register_model_type(MODEL_TYPE, files={"vocab": VOCAB})
def build_adapted(config: dict[str, Any]) -> AdaptedCTCModel:
    """An adapted model with untrained adapters from its config.json dict (weights load afterwards)."""
    acfg = dict(config["adapter"])
    acfg["specaug"] = SpecAugmentConfig(**acfg.get("specaug", {}))
    model = AdaptedCTCModel(build_base(config["base"]), int(config["vocab_size"]), AdapterConfig(**acfg))
    for lang, ids in config["languages"].items():
        model.add_language(lang, ids)
    return model


def load_adapted(model_dir: str | os.PathLike[str],
                 device: str | torch.device = "cpu") -> tuple[AdaptedCTCModel, CharVocab]:
    """Load a directory written by ``save_adapted``."""
    loaded = hub.load_pretrained(model_dir, device, expect=MODEL_TYPE)
    return cast(AdaptedCTCModel, loaded.model), loaded.files["vocab"]

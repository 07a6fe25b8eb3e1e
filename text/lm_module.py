"""LightningModule for the small decoder-only LM that FLAME freezes: next-token loss on monolingual text."""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor
from transformers import LlamaForCausalLM

from common.io import atomic_open
from common.optim import adamw_warmup_cosine, decay_groups
from text.lm_config import TextLMConfig


def _as_dict(x: Any) -> dict[str, Any]:
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})


def lm_loss(logits: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
    """Mean next-token cross-entropy over real target tokens (padding ignored)."""
    target = ids[:, 1:].masked_fill(~mask[:, 1:], -100)  # [B, T-1]
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), ignore_index=-100)


class TextLMModule(L.LightningModule):
    """Trains a transformers ``LlamaForCausalLM`` from scratch; exports it with ``save_pretrained``."""

    def __init__(
        self,
        net: TextLMConfig | dict[str, Any],
        vocab_size: int,
        tokenizer_path: str,
        langs: list[str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.1,
    ):
        super().__init__()
        cfg = _as_dict(net)
        self.save_hyperparameters({
            "net": cfg, "vocab_size": vocab_size, "tokenizer_path": str(tokenizer_path), "langs": list(langs or []),
            "lr": lr, "weight_decay": weight_decay, "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
        })
        self.net = LlamaForCausalLM(TextLMConfig(**cfg).to_llama(vocab_size))

    def _loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
        ids, mask = batch["ids"], batch["mask"]  # [B, T]
        logits = self.net(input_ids=ids, attention_mask=mask.long(), use_cache=False).logits  # [B, T, V]
        return lm_loss(logits, ids, mask), int(mask[:, 1:].sum())

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["ids"].shape[0])
        return loss

    def _eval_step(self, stage: str, batch: dict[str, Tensor]) -> None:
        loss, n = self._loss(batch)
        # Weighted by tokens, so the epoch mean is the per-token loss of the whole split.
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("val/loss")
        if loss is not None:
            self.log("val/ppl", math.exp(min(float(loss), 50.0)))

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Per-token loss and perplexity of a checkpoint on ``cfg.data``'s test text (common.evaluation.Evaluable)."""
        import hydra

        from common.evaluation import trainer_test

        model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        metrics = trainer_test(cfg, model, hydra.utils.instantiate(cfg.data, _convert_="all"), ckpt)
        if "test/loss" in metrics:
            metrics["test/ppl"] = math.exp(min(metrics["test/loss"], 50.0))
        print("\n".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
        return metrics

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   (0.9, 0.95), hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """``config.json`` + ``model.safetensors`` + the tokenizer in transformers' format (``from_pretrained``)."""
        from text.hf_tokenizer import to_transformers

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        net = self.net.float()
        net.config.architectures = [type(net).__name__]
        # Written here rather than by save_pretrained so that every file lands atomically; tied weights once.
        state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items() if k != "lm_head.weight"}
        with atomic_open(out / "config.json", "w", encoding="utf-8") as f:
            f.write(net.config.to_json_string())
        with atomic_open(out / "generation_config.json", "w", encoding="utf-8") as f:
            f.write(net.generation_config.to_json_string())
        tmp = out / ".model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(out / "model.safetensors")
        to_transformers(self.hparams["tokenizer_path"], self.hparams["net"]["max_length"]).save_pretrained(out)
        return out

"""LightningModule for sentence-encoder training: translation ranking with in-batch negatives, xsim on dev/test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from common.losses import ContrastiveLoss, text_keys
from common.optim import adamw_warmup_cosine, clip_dense_grad_norm, decay_groups
from text.sentence_encoder import SentenceEncoder, SentenceEncoderConfig, save_pretrained
from text.tokenizer import SentencePieceTokenizer
from text.xsim import format_matrix, mean_error, pairwise_matrix


def _as_dict(x: Any) -> dict[str, Any]:
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})


class SentenceEncoderModule(L.LightningModule):
    """Trains a ``SentenceEncoder`` on translation pairs with a bidirectional additive-margin ranking loss."""

    def __init__(
        self,
        encoder: SentenceEncoderConfig | dict[str, Any],
        vocab_size: int,
        tokenizer_path: str,
        langs: list[str] | None = None,
        held_out: list[str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
        scale: float = 20.0,
        margin: float = 0.3,
        min_pair_rows: int = 20,
        lang_queue: int = 0,
    ):
        super().__init__()
        enc = {**_as_dict(encoder), "vocab_size": vocab_size}
        self.save_hyperparameters({
            "encoder": enc, "vocab_size": vocab_size, "tokenizer_path": str(tokenizer_path),
            "langs": list(langs or []), "held_out": list(held_out or []), "lr": lr, "weight_decay": weight_decay,
            "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio, "scale": scale, "margin": margin,
            "min_pair_rows": min_pair_rows, "lang_queue": lang_queue,
        })
        self.net = SentenceEncoder(SentenceEncoderConfig(**enc))
        if self.net.bag is not None and Path(tokenizer_path).exists():  # else the checkpoint's table fills it
            sp = SentencePieceTokenizer(tokenizer_path).sp
            self.net.set_pieces([sp.id_to_piece(i) for i in range(sp.get_piece_size())])
        self.loss_fn = ContrastiveLoss(scale=scale, margin=margin, lang_queue=lang_queue)
        self._eval: dict[str, list[tuple[int, Tensor]]] = defaultdict(list)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        a = self.net(batch["ids_a"], batch["mask_a"])  # [B, E]
        b = self.net(batch["ids_b"], batch["mask_b"])  # [B, E]
        if self.loss_fn.queue is None:
            loss = self.loss_fn(a, b)
        else:  # the queue needs each side's languages, and its texts' keys to leave out equal texts
            keys = (text_keys(batch["ids_a"], batch["mask_a"]), text_keys(batch["ids_b"], batch["mask_b"]))
            loss = self.loss_fn(a, b, (batch["langs_a"], batch["langs_b"]), keys)
        bs = a.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        with torch.no_grad():
            acc = ((a @ b.T).argmax(1) == torch.arange(bs, device=a.device)).float().mean()
        self.log("train/in_batch_acc", acc, batch_size=bs)
        return loss

    def _eval_step(self, batch: dict[str, Any]) -> None:
        emb = self.net(batch["ids"], batch["mask"]).cpu()  # [B, E]
        for lang, idx, e in zip(batch["langs"], batch["index"], emb):
            self._eval[lang].append((idx, e))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch)

    def _log_xsim(self, stage: str) -> dict[str, dict[str, float]]:
        embs: dict[str, tuple[Sequence[int], Tensor]] = {
            lang: ([i for i, _ in rows], torch.stack([e for _, e in rows])) for lang, rows in self._eval.items()}
        self._eval.clear()
        if len(embs) < 2:
            return {}
        # An evaluation set smaller than min_pair_rows (fast_dev_run's single batch) is scored whole.
        seen = len({i for ids, _ in embs.values() for i in ids})
        matrix = pairwise_matrix(embs, min_rows=min(self.hparams["min_pair_rows"], seen))
        trained = [lang for lang in embs if lang in self.hparams["langs"]] or list(embs)
        self.log(f"{stage}/xsim", mean_error(matrix, trained), prog_bar=True, rank_zero_only=True)
        for lang in self.hparams["held_out"]:
            if lang in matrix:
                pairs = [e for b in trained for e in (matrix[lang].get(b), matrix[b].get(lang)) if e is not None]
                if pairs:
                    self.log(f"{stage}_{lang}/xsim", sum(pairs) / len(pairs), rank_zero_only=True)
        return matrix

    def on_validation_epoch_end(self) -> None:
        matrix = self._log_xsim("val")
        if matrix and not self.trainer.sanity_checking:
            rank_zero_info(f"\nvalidation, epoch {self.current_epoch}:\n{format_matrix(matrix)}")

    def on_test_epoch_end(self) -> None:
        matrix = self._log_xsim("test")
        if matrix:
            rank_zero_info(f"\ntest:\n{format_matrix(matrix)}")

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        """Clip the dense gradients only: the bag's rows get sparse ones, which norm clipping does not take."""
        if gradient_clip_val:
            clip_dense_grad_norm(self, gradient_clip_val)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   (0.9, 0.98), hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + ``tokenizer.model`` for ``from_pretrained``."""
        tokenizer = SentencePieceTokenizer(self.hparams["tokenizer_path"])
        return save_pretrained(self.net, tokenizer, out_dir, langs=self.hparams["langs"],
                               held_out=self.hparams["held_out"])

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """xsim bitext retrieval and cross-lingual search on ``cfg.data``'s test split, and on ``data.ood_manifest``
        (held-out domains) when set (common.evaluation.Evaluable).

        ``ckpt`` is an exported model directory or a training checkpoint (then exported to ``<run>/model``);
        ``xsim.json`` and an ``xsim.png`` heatmap go to the run folder (``ood/`` inside it for the second split),
        and the OOD figures come back prefixed ``ood_``.
        """
        from text.xsim import evaluate_encoder

        out_dir = Path(cfg.paths.output_dir)
        model_dir = Path(ckpt)
        if not model_dir.is_dir():
            model_dir = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).export(out_dir / "model")
        splits = {"test": (cfg.data.test_manifest, out_dir, "")}
        if cfg.data.get("ood_manifest"):
            splits["ood"] = (cfg.data.ood_manifest, out_dir / "ood", "ood_")
        metrics: dict[str, float] = {}
        for name, (manifest, folder, prefix) in splits.items():
            report = evaluate_encoder(model_dir, manifest, folder, limit=cfg.get("eval_sentences", 1000),
                                      min_rows=cfg.model.get("min_pair_rows", 20))
            print(f"\n{name}: {manifest} ({report['sentences']} rows)")
            print(format_matrix(report["xsim_error"]))  # type: ignore[arg-type]
            # Means over the trained pairs, and with English apart (pivot) from the rest (others): text.xsim.
            figures = {k: float(v) for k, v in report.items()  # type: ignore[arg-type]
                       if k.startswith(("mean_", "max_"))}
            print("\n".join(f"{k}: {v:.4f}" for k, v in figures.items()))
            metrics.update({prefix + k: v for k, v in figures.items()})
            rank_zero_info(f"wrote {folder / 'xsim.json'} and {folder / 'xsim.png'}")
        return metrics

"""SONAR-SLT training: the pose encoder regressed onto the frozen shared sentence encoder's embeddings (cosine plus
contrastive with a queue of negatives), and the text decoder trained as an auto-encoder on text alone, in every
language the decoder should write. ``objective=text`` is the baseline: encoder and decoder trained end-to-end on one
language's text (cross-entropy through the pose embedding).

Schedule (``objective=sonar``): the first ``decoder_steps`` steps train the decoder alone on text auto-encoding;
then the pose encoder trains against the targets while the decoder keeps auto-encoding (``ae_weight``; 0 freezes it),
and from ``joint_from`` on the decoder also learns to read the predicted embeddings (``joint_weight``).
``init_decoder`` starts the decoder from an exported model's (trained on text alone, so it may serve runs on other
sign data); with ``ae_weight=0`` it stays as it is, and only the pose encoder trains (benchmarks/slt_ablation.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from common.io import atomic_open
from common.losses import CosineQueueLoss
from common.optim import adamw_warmup_cosine, decay_groups
from text.tokenizer import PAD_ID, SentencePieceTokenizer
from vision.sign.config import SignTranslatorConfig
from vision.sign.evaluation import Scores, decode, format_table
from vision.sign.model import SignTranslationModel

log = logging.getLogger(__name__)
OBJECTIVES = ("sonar", "text")


def token_loss(logits: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
    """Cross-entropy of teacher-forced ``logits [B, L-1, V]`` against ``ids[:, 1:]`` over real tokens."""
    target = ids[:, 1:].masked_fill(~mask[:, 1:], PAD_ID)
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=PAD_ID)


def noisy(emb: Tensor, scale: float) -> Tensor:
    """Unit embeddings moved by Gaussian noise of a per-row norm drawn from [0, scale], so the decoder learns to
    read the imperfect embeddings a pose encoder predicts."""
    if scale <= 0:
        return emb
    noise = F.normalize(torch.randn_like(emb), dim=-1) * torch.rand(emb.shape[0], 1, device=emb.device) * scale
    return F.normalize(emb + noise, dim=-1)


class SignTranslationModule(L.LightningModule):
    """See the module docstring. ``net`` is a ``SignTranslatorConfig`` (a named size); the data gives its
    embedding width, vocabulary and languages."""

    def __init__(self, net: SignTranslatorConfig | dict[str, Any], embed_dim: int = 128, vocab_size: int = 4000,
                 tokenizer_path: str = "", langs: list[str] | tuple[str, ...] = (), objective: str = "sonar",
                 queue_size: int = 1024, cosine_weight: float = 1.0, contrastive_weight: float = 1.0,
                 temperature: float = 0.05, decoder_steps: int = 0, ae_weight: float = 1.0, embed_noise: float = 0.5,
                 joint_from: int = -1, joint_weight: float = 0.0, lr: float = 1e-3, weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.98), warmup_steps: int = 200, min_lr_ratio: float = 0.05,
                 val_beam: int = 1, eval_beam: int = 4, val_max_clips: int = 256, init_decoder: str = "",
                 max_tokens: int = 0, eval_max_clips: int = 0):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"model.objective={objective!r}: expected one of {', '.join(OBJECTIVES)}")
        cfg = net if isinstance(net, SignTranslatorConfig) else SignTranslatorConfig.from_dict(dict(net))
        cfg = replace(cfg, embed_dim=embed_dim, decoder=replace(cfg.decoder, vocab_size=vocab_size),
                      langs=tuple(langs) or cfg.langs)
        hp = {k: v for k, v in locals().items() if k not in ("self", "net", "cfg", "__class__")}
        # Plain lists and dicts, so checkpoints load with weights_only=True.
        self.save_hyperparameters(json.loads(json.dumps({"net": cfg.to_dict(), **hp, "langs": list(cfg.langs)})))
        self.net = SignTranslationModel(cfg)
        if init_decoder:
            self.load_decoder(init_decoder)
        self.loss_fn = CosineQueueLoss(embed_dim, queue_size, cosine_weight, contrastive_weight, temperature)
        self._tokenizer: SentencePieceTokenizer | None = None
        self._val = Scores()
        self._val_ae = Scores()

    def load_decoder(self, model_dir: str) -> None:
        """The decoder weights of an exported model with the same decoder and tokenizer."""
        from vision.sign.hub import load_translator

        net, tok = load_translator(model_dir)
        if net.cfg.decoder != self.net.cfg.decoder or net.cfg.embed_dim != self.net.cfg.embed_dim:
            raise ValueError(f"model.init_decoder={model_dir}: its decoder ({net.cfg.decoder}, embedding width "
                             f"{net.cfg.embed_dim}) differs from this model's ({self.net.cfg.decoder}, "
                             f"{self.net.cfg.embed_dim})")
        if Path(self.hparams["tokenizer_path"]).is_file() and tok.path.read_bytes() != Path(
                self.hparams["tokenizer_path"]).read_bytes():
            raise ValueError(f"model.init_decoder={model_dir}: its tokenizer differs from data.tokenizer_path="
                             f"{self.hparams['tokenizer_path']}")
        self.net.decoder.load_state_dict(net.decoder.state_dict())

    @property
    def tokenizer(self) -> SentencePieceTokenizer:
        if self._tokenizer is None:
            self._tokenizer = SentencePieceTokenizer(self.hparams["tokenizer_path"])
        return self._tokenizer

    def set_tokenizer(self, tokenizer: SentencePieceTokenizer) -> None:
        """Use an exported model's tokenizer (its side file) rather than the training-time path."""
        self._tokenizer = tokenizer

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        hp, step = self.hparams, self.global_step
        pose, text = batch.get("pose"), batch.get("text")
        losses: dict[str, Tensor] = {}
        if hp["objective"] == "text":
            if pose is None:
                return None
            emb = self.net.embed(pose["pose"], pose["pose_mask"])
            losses["ce"] = token_loss(self.net.decoder(emb, pose["ids"], pose["ids_mask"]), pose["ids"],
                                      pose["ids_mask"])
        else:
            decoder_only = step < hp["decoder_steps"]
            if text is not None and (decoder_only or hp["ae_weight"] > 0):
                emb = noisy(text["emb"], hp["embed_noise"])
                ae = token_loss(self.net.decoder(emb, text["ids"], text["ids_mask"]), text["ids"], text["ids_mask"])
                losses["ae"] = ae if decoder_only else hp["ae_weight"] * ae
            if pose is not None and not decoder_only:
                pred = self.net.encoder(pose["pose"], pose["pose_mask"])  # [B, E]
                parts = self.loss_fn.components(pred, pose["target"])
                losses["pose"] = self.loss_fn(pred, pose["target"])
                self.log("train/cos", 1 - parts["cosine"], prog_bar=True, batch_size=pred.shape[0])
                if 0 <= hp["joint_from"] <= step and hp["joint_weight"] > 0:
                    logits = self.net.decoder(F.normalize(pred, dim=-1), pose["ids"], pose["ids_mask"])
                    losses["joint"] = hp["joint_weight"] * token_loss(logits, pose["ids"], pose["ids_mask"])
        if not losses:
            return None
        loss = torch.stack(list(losses.values())).sum()
        for k, v in losses.items():
            self.log(f"train/{k}", v)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    @torch.no_grad()
    def score_batch(self, batch: dict[str, Any], scores: Scores, beam: int, ae: Scores | None = None) -> None:
        """Decode one evaluation batch into every language it holds; ``ae`` also scores decoding the targets."""
        pred = self.net.embed(batch["pose"], batch["pose_mask"])  # [B, E]
        for lang, refs in batch["texts"].items():
            if lang not in self.tokenizer.langs:
                continue
            have = torch.tensor([bool(r) for r in refs], device=pred.device)
            idx = have.nonzero().squeeze(-1)
            refs_kept = [refs[int(i)] for i in idx]
            target = batch["targets"][lang].to(pred.device)[idx]
            n = self.hparams.get("max_tokens") or None
            scores.add(lang, decode(self.net.decoder, self.tokenizer, pred[idx], lang, beam, max_length=n), refs_kept,
                       pred[idx], target)
            if ae is not None:
                ae.add(lang, decode(self.net.decoder, self.tokenizer, target, lang, beam, max_length=n), refs_kept)

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        if batch is None or batch_idx * batch["pose"].shape[0] >= self.hparams["val_max_clips"]:
            return
        ae = self._val_ae if self.hparams["objective"] == "sonar" else None
        self.score_batch(batch, self._val, self.hparams["val_beam"], ae)

    def on_validation_epoch_end(self) -> None:
        summary, ae = self._val.summary(), self._val_ae.summary()
        self._val, self._val_ae = Scores(), Scores()
        if not summary:
            return
        mean = summary["mean"]
        self.log("val/chrf", mean["chrf"], prog_bar=True)
        self.log("val/bleu", mean["bleu"])
        self.log("val/cos", mean["cos"], prog_bar=True)
        if ae:
            self.log("val/ae_chrf", ae["mean"]["chrf"])  # the decoder's ceiling: decoding the true embeddings
        for lang, m in summary.items():
            if lang != "mean":
                self.log(f"val/{lang}/chrf", m["chrf"])
        if not self.trainer.sanity_checking:
            rank_zero_info(format_table(summary, f"\nvalidation, step {self.global_step}:"))

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """``config.json`` + ``model.safetensors`` + ``tokenizer.model`` (model_type ``sign_translator``)."""
        from vision.sign.hub import save_pretrained

        return save_pretrained(self.net, self.tokenizer, out_dir, objective=self.hparams["objective"])

    @classmethod
    def load_for_eval(cls, ckpt: str) -> SignTranslationModule:
        """The module of a training checkpoint or of an exported model directory."""
        if not Path(ckpt).is_dir():
            return cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        from vision.sign.hub import load_translator

        net, tok = load_translator(ckpt)
        module = cls(net.cfg, net.cfg.embed_dim, net.cfg.decoder.vocab_size, str(tok.path), list(net.cfg.langs))
        module.net = net
        module.set_tokenizer(tok)
        return module

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """BLEU, chrF and embedding cosine per target language on every ``cfg.data.test_manifest`` split (beam
        search, ``model.eval_beam``; ``model.eval_max_clips`` > 0 scores a fixed sample of that many clips of each
        split); prints the tables and writes ``sign_eval.json`` into the run folder."""
        import hydra

        module = cls.load_for_eval(ckpt).eval()
        beam = int(cfg.model.get("eval_beam", module.hparams.get("eval_beam", 4)))
        module.hparams["max_tokens"] = int(cfg.model.get("max_tokens", module.hparams.get("max_tokens", 0)))
        limit = int(cfg.model.get("eval_max_clips", 0) or 0)
        dm = hydra.utils.instantiate(cfg.data, _convert_="all", tokenizer_path=str(module.tokenizer.path))
        metrics: dict[str, float] = {}
        tables: dict[str, dict[str, dict[str, float]]] = {}
        for name, loader in dm.test_loaders(limit).items():
            scores = Scores()
            for batch in loader:
                if batch is not None:
                    module.score_batch(batch, scores, beam)
            tables[name] = scores.summary()
            print(format_table(tables[name], f"\n{name} (beam {beam}):"))
            metrics.update({f"{name}/{lang}/{k}": v for lang, m in tables[name].items() for k, v in m.items()})
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "sign_eval.json", "w", encoding="utf-8") as f:
            json.dump({"checkpoint": ckpt, "beam": beam, "tables": tables}, f, indent=2, ensure_ascii=False)
        return metrics

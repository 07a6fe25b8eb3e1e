"""LightningModule for source tracing: cross-entropy on the source and family heads (mixup-aware), dev calibration
after every validation (kept in the checkpoint and exported with the model), the full report on test."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from common import hub
from common.optim import adamw_warmup_cosine, decay_groups
from common.scoring import macro_f1
from speech.source_trace.calibration import Calibration, fit_calibration
from speech.source_trace.config import SourceTracerConfig
from speech.source_trace.hub import load_tracer, save_pretrained
from speech.source_trace.model import SourceTracerNet
from speech.source_trace.report import Outputs, trace_report, write_report

log = logging.getLogger(__name__)


def plain(x: Any) -> Any:
    """Tuples to lists, recursively: hyperparameters that load with ``weights_only=True``."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return [plain(v) for v in x] if isinstance(x, (list, tuple)) else x


def ssl_encoder_from(model_dir: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Architecture and weights of the wav2vec2 encoder inside any suite model directory that holds one."""
    net = hub.load_pretrained(model_dir).model
    enc = getattr(net, "encoder", None)
    if enc is None or not hasattr(enc, "layers") or not hasattr(enc, "cfg"):
        raise ValueError(f"{model_dir}: model_type holds no wav2vec2 encoder (.encoder) for the ssl front-end")
    return plain(asdict(enc.cfg)), enc.state_dict()


class SourceTraceModule(L.LightningModule):
    """Trains a ``SourceTracerNet``; validates by macro-F1 over the known sources; evaluates with the full report."""

    def __init__(self, net: SourceTracerConfig | dict[str, Any], sources: list[str], families: list[str],
                 ssl_init: str | None = None, family_weight: float = 0.5, label_smoothing: float = 0.0,
                 lr: float = 2e-3, weight_decay: float = 1e-4, betas: tuple[float, float] = (0.9, 0.98),
                 warmup_steps: int = 50, min_lr_ratio: float = 0.05, open_set_score: str = "msp", knn_k: int = 5,
                 accept_known: float = 0.95, threshold_rule: str = "accept_known"):
        super().__init__()
        cfg = net.to_dict() if isinstance(net, SourceTracerConfig) else dict(net)
        cfg |= {"sources": list(sources), "families": list(families)}
        ssl_state = None
        if ssl_init and cfg["frontend"].get("kind") == "ssl":
            cfg["frontend"]["ssl_encoder"], ssl_state = ssl_encoder_from(ssl_init)
        self.save_hyperparameters({
            "net": plain(cfg), "sources": list(sources), "families": list(families), "ssl_init": None,
            "family_weight": family_weight, "label_smoothing": label_smoothing, "lr": lr,
            "weight_decay": weight_decay, "betas": list(betas), "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio, "open_set_score": open_set_score, "knn_k": knn_k,
            "accept_known": accept_known, "threshold_rule": threshold_rule})
        self.net = SourceTracerNet(SourceTracerConfig.from_dict(self.hparams["net"]))
        if ssl_state is not None:
            self.net.frontend.features.encoder.load_state_dict(ssl_state)  # type: ignore[union-attr]
        self.calibration: Calibration | None = None
        self.report_dir: str | None = None
        """Where ``on_test_epoch_end`` writes report.json and confusion.png (None: the trainer's root dir)."""
        self.last_report: dict[str, Any] = {}
        self._eval: list[Outputs] = []

    def _ce(self, logits: Tensor, labels: Tensor, mix: tuple[Tensor, float] | None) -> Tensor:
        ls = self.hparams["label_smoothing"]
        loss = F.cross_entropy(logits, labels, label_smoothing=ls)
        if mix is not None:
            perm, lam = mix
            loss = lam * loss + (1 - lam) * F.cross_entropy(logits, labels[perm], label_smoothing=ls)
        return loss

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> Tensor | None:
        if batch is None:  # every clip of the batch was unreadable
            return None
        out = self.net(batch["wave"], batch["wave_lens"])
        mix = batch.get("mix")
        src = self._ce(out.source_logits, batch["source"], mix)
        fam = self._ce(out.family_logits, batch["family"], mix)
        loss = src + self.hparams["family_weight"] * fam
        bs = len(batch["source"])
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/source_loss", src, batch_size=bs)
        with torch.no_grad():
            self.log("train/acc", (out.source_logits.argmax(-1) == batch["source"]).float().mean(), prog_bar=True,
                     batch_size=bs)
        return loss

    def _collect(self, batch: dict[str, Any] | None) -> None:
        if batch is None:
            return
        out = self.net(batch["wave"], batch["wave_lens"])
        meta = batch["meta"]
        self._eval.append(Outputs(out.source_logits.float().cpu(), out.family_logits.float().cpu(),
                                  out.embedding.float().cpu(), batch["source"].cpu(), batch["family"].cpu(), meta))

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._collect(batch)

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._collect(batch)

    def gathered(self) -> Outputs | None:
        """This epoch's outputs from every rank, one row per clip id."""
        parts, self._eval = self._eval, []
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, parts)
            parts = [p for rank in everyone for p in rank]
        if not parts:
            return None
        out = Outputs.cat(parts)
        first: list[int] = []
        seen: set[str] = set()
        for i, clip in enumerate(out.meta["id"]):
            if clip not in seen:
                seen.add(clip)
                first.append(i)
        idx = torch.tensor(first)
        return Outputs(out.source_logits[idx], out.family_logits[idx], out.embedding[idx], out.source[idx],
                       out.family[idx], {k: [v[i] for i in first] for k, v in out.meta.items()})

    def fit_calibration(self, out: Outputs) -> Calibration:
        hp = self.hparams
        return fit_calibration(out.source_logits, out.family_logits, out.embedding, out.source, out.family,
                               hp["open_set_score"], hp["knn_k"], hp["accept_known"],
                               rule=hp.get("threshold_rule", "accept_known"))

    def on_validation_epoch_end(self) -> None:
        out = self.gathered()
        if out is None or not bool((out.source >= 0).any()):
            self.log("val/macro_f1", 0.0)
            return
        known = out.source >= 0
        logits, labels = out.source_logits[known], out.source[known]
        pred = logits.argmax(-1)
        self.log("val/macro_f1", macro_f1(pred, labels, classes=range(len(self.hparams["sources"]))), prog_bar=True)
        self.log("val/acc", (pred == labels).float().mean())
        self.log("val/loss", F.cross_entropy(logits, labels))
        if not self.trainer.sanity_checking:
            self.calibration = self.fit_calibration(out)
            for k, v in self.calibration.report.items():
                if isinstance(v, float):
                    self.log(f"val/{k}", v)

    def on_test_epoch_end(self) -> None:
        out = self.gathered()
        if out is None:
            return
        cal = self.calibration or Calibration()
        metrics, report = trace_report(out, cal, self.hparams["sources"], self.hparams["families"])
        for k, v in metrics.items():
            self.log(f"test/{k}", v)
        self.last_report = report
        if self.trainer.is_global_zero:
            where = write_report(report, self.report_dir or self.trainer.default_root_dir)
            rank_zero_info(f"\nsource tracing report in {where}: " +
                           ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.calibration is not None:
            checkpoint["calibration"] = asdict(self.calibration)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("calibration")
        self.calibration = Calibration(**state) if state else None

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """A model directory for ``speech.source_trace.tracer.SourceTracer.from_pretrained`` with the dev
        calibration (identity if none)."""
        if self.calibration is None:
            log.warning("no dev calibration yet (no validation ran): exporting temperature 1 and no threshold")
        return save_pretrained(self.net, self.calibration or Calibration(), out_dir)

    @classmethod
    def from_directory(cls, model_dir: str | Path) -> SourceTraceModule:
        """A module around an exported tracer (its calibration included)."""
        net, cal, _ = load_tracer(model_dir)
        module = cls(net.cfg.to_dict(), net.cfg.sources, net.cfg.families)
        module.net.load_state_dict(net.state_dict())
        module.calibration = cal
        return module

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """The report on ``cfg.data``'s test split (common.evaluation.Evaluable): metrics.json, report.json and
        confusion.png in ``cfg.paths.output_dir``; ``ckpt`` is a training checkpoint or an exported directory."""
        import hydra

        from common.evaluation import trainer_test

        if Path(ckpt).is_dir():
            model = cls.from_directory(ckpt)
        else:
            model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        model.report_dir = str(cfg.paths.output_dir)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        datamodule.set_classes(model.hparams["sources"], model.hparams["families"])  # the model's label order
        return trainer_test(cfg, model, datamodule, ckpt)

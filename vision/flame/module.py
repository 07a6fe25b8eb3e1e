"""LightningModules of the FLAME family: the retrieval validation and ``evaluate`` shared with the CLIP baseline
(``ImageTextModule``), and FLAME's training on cached facet embeddings (``FlameModule``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from common.io import atomic_open
from common.losses import InfoNCELoss, SigmoidLoss
from common.optim import adamw_warmup_cosine, decay_groups
from datamodules.text import named_paths
from vision.flame.config import FlameConfig
from vision.flame.evaluation import Collector, format_table, split_retrieval, transfer, zero_shot
from vision.flame.model import FlameModel, facet_query

log = logging.getLogger(__name__)
LOSSES = ("sigmoid", "infonce")
TextEmb = dict[str, dict[str, Tensor]]


def as_dict(x: Any) -> dict[str, Any]:
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = dict(batch, image=batch["image"].to(device))
    if "text_emb" in batch:
        out["text_emb"] = {lang: {k: v.to(device) for k, v in by.items()} for lang, by in batch["text_emb"].items()}
    return out


class ImageTextModule(L.LightningModule):
    """Retrieval validation (``val/r1``: text->image R@1, mean over caption languages), AdamW with warm-up and
    cosine decay, and ``evaluate`` (common.evaluation.Evaluable); subclasses say how images and texts embed."""

    net: Any
    """The network; its ``cfg.tower`` is the image tower's config."""

    def __init__(self) -> None:
        super().__init__()
        self._collect = Collector()

    def image_embeddings(self, images: Tensor) -> Tensor:
        """Unit vectors ``[B, D]``."""
        raise NotImplementedError

    def query_embeddings(self, batch: dict[str, Any]) -> TextEmb:
        """Unit text query vectors ``{lang: {kind: [B, D]}}`` of a batch's captions."""
        raise NotImplementedError

    def prompt_embedder(self, device: torch.device) -> Callable[[list[str]], Tensor] | None:
        """Free text (zero-shot prompts) -> unit vectors ``[N, D]``; None when the text side is unavailable."""
        raise NotImplementedError

    def eval_data_kwargs(self) -> dict[str, Any]:
        """Overrides of ``cfg.data`` for ``evaluate`` (caption kinds, cache checks)."""
        return {"caption_kind": "both"}

    @classmethod
    def load_for_eval(cls, cfg: Any, ckpt: str) -> ImageTextModule:
        """The module of a training checkpoint (or, where a subclass supports it, an exported model directory)."""
        return cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        if batch is not None:
            self._collect.add(batch["ids"], self.image_embeddings(batch["image"]), self.query_embeddings(batch),
                              batch["attributes"])

    def on_validation_epoch_end(self) -> None:
        split = self._collect.split()
        if split is None:
            return
        m = split_retrieval(split)
        kind = "short" if any("short" in by for by in split.texts.values()) else next(iter(next(iter(
            split.texts.values()))))
        # Every rank gathered the same rows, so each logs the same values (the monitor needs them everywhere).
        self.log("val/r1", m[f"{kind}/t2i_r1"], prog_bar=True)
        for key in ("t2i_r5", "t2i_r10", "i2t_r1", "i2t_r5", "i2t_r10"):
            self.log(f"val/{key}", m[f"{kind}/{key}"])
        for lang in split.texts:
            self.log(f"val/{lang}/t2i_r1", m[f"{lang}/{kind}/t2i_r1"])

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    @torch.no_grad()
    def evaluate_split(self, loader: Any, templates: Any = None) -> dict[str, float]:
        """Retrieval per caption language and kind, transfer ratios and zero-shot accuracy on one split."""
        collect, device = Collector(), self.device
        for batch in loader:
            if batch is not None:
                batch = _to(batch, device)
                collect.add(batch["ids"], self.image_embeddings(batch["image"]), self.query_embeddings(batch),
                            batch["attributes"])
        split = collect.split()
        if split is None:
            raise ValueError("no readable test rows")
        m = split_retrieval(split)
        m.update(transfer(m))
        embed = self.prompt_embedder(device)
        if embed is not None:
            for lang in split.texts:
                m.update({f"zeroshot/{lang}/{k}": v for k, v in zero_shot(split, embed, lang, templates).items()})
        return m

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Retrieval (per language, short and long captions), transfer and zero-shot classification on every test
        set of ``cfg.data.test_path``; writes ``retrieval.json`` into the run folder and prints the table."""
        import hydra

        model = cls.load_for_eval(cfg, ckpt)
        model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        kwargs = model.eval_data_kwargs()
        if model.net.cfg.tower.image_size:  # the tower's input side, whatever the experiment's data says
            kwargs["image_size"] = model.net.cfg.tower.image_size
        dm = hydra.utils.instantiate(cfg.data, _convert_="all", **kwargs)
        templates = model.hparams.get("zero_shot_templates")
        metrics: dict[str, float] = {}
        names = list(named_paths(dm.hparams.test_path))
        for name, path in named_paths(dm.hparams.test_path).items():
            try:
                m = model.evaluate_split(dm.loader(path, "test"), templates)
            except KeyError as e:  # an embedding cache may hold long captions of some splits only
                if kwargs.get("caption_kind") != "both":
                    raise
                log.warning("%s: %s; scoring its short captions only", name, e.args[0] if e.args else e)
                short = hydra.utils.instantiate(cfg.data, _convert_="all", **{**kwargs, "caption_kind": "short"})
                m = model.evaluate_split(short.loader(path, "test"), templates)
            metrics.update({f"{name}/{k}": v for k, v in m.items()})
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "retrieval.json", "w", encoding="utf-8") as f:
            json.dump({"checkpoint": ckpt, "model": cls.__name__, "train_langs": cfg.data.get("train_langs"),
                       "metrics": metrics}, f, indent=2, ensure_ascii=False)
        for name in names:
            print(format_table({cls.__name__: metrics}, split=name))
        return metrics


class FlameModule(ImageTextModule):
    """Trains FLAME's image tower + projector against cached facet embeddings of a frozen LLM; no LLM is loaded.

    Loss ``sigmoid``: ``common.losses.SigmoidLoss`` with every facet of every caption language of an image as a
    positive (FLAME's multi-positive sigmoid; scale starts at 10, bias at -10). ``infonce``: each image against the
    facet mean of one caption language, drawn per image and step. Text queries (validation, evaluation): the facet
    mean, or the first facet with ``net.query=first``.
    """

    def __init__(
        self,
        net: FlameConfig | dict[str, Any],
        text_embeddings: str | None = None,
        loss: str = "sigmoid",
        positives_per_image: int = 0,
        temperature: float = 0.1,
        bias: float = -10.0,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
        zero_shot_templates: dict[str, list[str]] | None = None,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"model.loss={loss!r}: expected one of {', '.join(LOSSES)}")
        cfg = as_dict(net)
        if text_embeddings and not cfg.get("embed_dim"):
            cfg = text_side_from_cache(cfg, text_embeddings)
        self.save_hyperparameters({  # plain lists and dicts, so checkpoints load with weights_only=True
            "net": cfg, "text_embeddings": text_embeddings, "loss": loss, "positives_per_image": positives_per_image,
            "temperature": temperature, "bias": bias, "lr": lr, "weight_decay": weight_decay, "betas": list(betas),
            "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
            "zero_shot_templates": dict(zero_shot_templates) if zero_shot_templates else None})
        self.net = FlameModel(FlameConfig.from_dict(cfg))
        self.loss_fn = SigmoidLoss(temperature, bias) if loss == "sigmoid" else InfoNCELoss(temperature)

    def image_embeddings(self, images: Tensor) -> Tensor:
        return self.net.embed_image(images)

    def _cached(self, batch: dict[str, Any]) -> dict[str, dict[str, Tensor]]:
        if "text_emb" not in batch:
            raise ValueError("FLAME trains on cached text embeddings: set data.text_embeddings (build the cache with "
                             "scripts/flame_cache.py) and data.load_cache")
        return batch["text_emb"]

    def query_embeddings(self, batch: dict[str, Any]) -> TextEmb:
        q = self.net.cfg.query
        return {lang: {k: facet_query(v, q) for k, v in by.items()} for lang, by in self._cached(batch).items()}

    def contrastive_loss(self, img: Tensor, emb: dict[str, dict[str, Tensor]]) -> Tensor:
        """The configured loss of image outputs ``[B, D]`` against their cached facets ``{lang: {kind: [B, K, D]}}``."""
        groups = [emb[lang][kind] for lang in sorted(emb) for kind in emb[lang]]  # each [B, K, D]
        b = img.shape[0]
        if isinstance(self.loss_fn, SigmoidLoss):
            pool = torch.cat(groups, dim=1).to(img.dtype)  # [B, P, D]: every facet of every caption
            p = self.hparams["positives_per_image"]
            if 0 < p < pool.shape[1]:  # FLAME samples a few facets per step
                pick = torch.rand(b, pool.shape[1], device=pool.device).argsort(1)[:, :p]
                pool = pool.gather(1, pick[..., None].expand(-1, -1, pool.shape[2]))
            ids = torch.arange(b, device=img.device) + self.global_rank * b  # the same image on every rank
            return self.loss_fn(img, pool.flatten(0, 1), x_ids=ids, y_ids=ids.repeat_interleave(pool.shape[1]))
        means = torch.stack([facet_query(g, "mean") for g in groups], dim=1).to(img.dtype)  # [B, G, D]
        pick = torch.randint(len(groups), (b,), device=img.device)
        return self.loss_fn(img, means[torch.arange(b, device=img.device), pick])

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> Tensor | None:
        if batch is None:  # every image of the batch was unreadable
            return None
        img = self.net.image(batch["image"])  # [B, D]; the losses normalise
        loss = self.contrastive_loss(img, self._cached(batch))
        b = img.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        self.log("train/scale", self.loss_fn.scale, batch_size=b)
        if isinstance(self.loss_fn, SigmoidLoss):
            self.log("train/bias", self.loss_fn.logit_bias, batch_size=b)
        return loss

    def prompt_embedder(self, device: torch.device) -> Callable[[list[str]], Tensor] | None:
        llm = self.net.cfg.llm_dir
        if not llm or not Path(llm).is_dir():
            log.warning("zero-shot classification skipped: the LLM %r that made the embeddings is not here", llm)
            return None
        return self.net.embed_text

    def eval_data_kwargs(self) -> dict[str, Any]:
        from vision.flame.cache import EmbeddingCache

        prompts = self.net.cfg.prompts
        kinds = [k for k in ("short", "long") if k in prompts] or ["short"]
        # The evaluation cache must come from the same LLM and prompts as the training embeddings.
        expect: dict[str, Any] = {"prompts": {k: prompts[k] for k in kinds if k in prompts}}
        if self.net.cfg.llm_fingerprint:
            expect["llm"] = self.net.cfg.llm_fingerprint
        return {"caption_kind": "both" if len(kinds) == 2 else kinds[0],
                "load_cache": partial(EmbeddingCache.open, expect=expect)}

    @classmethod
    def load_for_eval(cls, cfg: Any, ckpt: str) -> ImageTextModule:
        if not Path(ckpt).is_dir():
            return super().load_for_eval(cfg, ckpt)
        from vision.flame.hub import load_flame

        net = load_flame(ckpt, llm_dir=cfg.model.get("llm_dir"))
        module = cls(asdict(net.cfg), zero_shot_templates=cfg.model.get("zero_shot_templates"))
        module.net = net
        return module

    def export(self, out_dir: str | Path) -> Path:
        """``config.json`` (tower, projector, LLM dir and facet prompts) + ``model.safetensors``, model_type flame."""
        from vision.flame.hub import save_pretrained

        return save_pretrained(self.net, out_dir)


def text_side_from_cache(cfg: dict[str, Any], cache_dir: str) -> dict[str, Any]:
    """``cfg`` with the text side the cache was made with: LLM width, directory, fingerprint, prompts."""
    from vision.flame.cache import EmbeddingCache
    from vision.flame.facets import facet_set

    cache = EmbeddingCache.open(cache_dir)
    man = cache.manifest
    rank_zero_info(f"FLAME: text embeddings of {cache_dir} (LLM {man.get('llm_path')}, D={cache.dim})")
    return {**cfg, "embed_dim": cache.dim, "llm_dir": man.get("llm_path"), "llm_fingerprint": man.get("llm"),
            "prompts": man.get("prompts", {}), "max_caption_tokens": man.get("max_caption_tokens", 128),
            "single_prompt": cfg.get("single_prompt") or facet_set("single").identity()}

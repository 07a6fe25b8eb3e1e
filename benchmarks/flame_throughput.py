"""FLAME training throughput (steps per second), side by side in one run: offline cache, online LLM, open_clip.

    python benchmarks/flame_throughput.py [cache=data/vision/flame_cache] [steps=30] [online_steps=8] [warmup=3]
        [batch_size=64] [threads=2] [output=<json>]

Three loops over the same training shards (``data``), the same image tower and projector (``flame_tiny`` with
``net`` overrides), the same batch size and precision, data loading included, ``warmup`` steps left out of the
clock:

- ``offline``: FLAME's own training (``FlameModule`` under a Lightning ``Trainer``), text from the embedding cache.
- ``online``: the same module and trainer, but the frozen LLM (the cache's ``llm_path``) encodes every caption of
  the batch in every step (all caption languages, the cache's facet prompts): what the cache saves.
- ``open_clip``: ``open_clip_train.train.train_one_epoch``, open_clip's own loop, with ``open_clip.ClipLoss`` on the
  same image encoder; its text side is the cached facet mean of one caption language per image (frozen text, so the
  two loops do the same work: the image tower's forward and backward).

Prints steps/s, images/s and the ratios offline/online and offline/open_clip, with the load average (the machine
may be shared); ``output=`` writes them as JSON.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from common import runner
from common.io import atomic_open
from datamodules.image_text import ImageTextDataModule
from vision.flame.cache import EmbeddingCache
from vision.flame.config import flame_tiny
from vision.flame.facets import FacetEncoder, FacetPrompts
from vision.flame.model import ImageEncoder, facet_query
from vision.flame.module import FlameModule


class StepClock(L.Callback):
    """Wall time from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.steps += 1
        if self.steps == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


class OnlineFlameModule(FlameModule):
    """FLAME whose facet embeddings come from the frozen LLM in every training step instead of the cache."""

    def __init__(self, encoder: FacetEncoder, kind: str, **kwargs: Any):
        super().__init__(**kwargs)
        self._encoder = [encoder]  # outside the module tree: the frozen LLM is not trained or saved
        self.kind = kind

    def _cached(self, batch: dict[str, Any]) -> dict[str, dict[str, Tensor]]:
        enc = self._encoder[0]
        return {lang: {k: enc(texts).to(self.device) for k, texts in by.items()}
                for lang, by in batch["captions"].items()}


class ClipOnCache(nn.Module):
    """What open_clip_train's loop drives: ``(images, texts) -> {image_features, text_features, logit_scale}``,
    with FLAME's image encoder and text features given (the cached facet means)."""

    def __init__(self, image: ImageEncoder):
        super().__init__()
        self.visual = image
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, images: Tensor, texts: Tensor) -> dict[str, Tensor]:
        return {"image_features": F.normalize(self.visual(images), dim=-1),
                "text_features": F.normalize(texts.to(images.dtype), dim=-1), "logit_scale": self.logit_scale.exp()}


class OpenClipBatches:
    """``(images, text features)`` batches as open_clip_train's ``data['train'].dataloader`` yields them: one
    caption language per image, drawn at random, its facet mean. It continues one iterator across calls and starts
    the loader's next epoch when one ends (as Lightning's loop does), so any number of steps reads any data."""

    def __init__(self, loader: Any, batch_size: int):
        self.loader, self.batch_size, self.num_batches = loader, batch_size, 0
        self.it = iter(loader)

    @property
    def num_samples(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for _ in range(self.num_batches):
            batch = next(self.it, None)
            if batch is None:  # the epoch ended
                self.it = iter(self.loader)
                batch = next(self.it)
            groups = [facet_query(by["short"], "mean") for _, by in sorted(batch["text_emb"].items())]
            means = torch.stack(groups, dim=1)  # [B, L, D]
            pick = torch.randint(means.shape[1], (means.shape[0],))
            yield batch["image"], means[torch.arange(means.shape[0]), pick]


def datamodule(cfg: DictConfig, cached: bool) -> ImageTextDataModule:
    return ImageTextDataModule(train_path=cfg.data, image_size=int(cfg.net.image_size), batch_size=int(cfg.batch_size),
                               text_embeddings=str(cfg.cache) if cached else None,
                               load_cache=EmbeddingCache.open if cached else None,
                               shuffle_buffer=int(cfg.shuffle_buffer), seed=int(cfg.seed), bad_input_log=None)


def module_kwargs(cfg: DictConfig) -> dict[str, Any]:
    net = asdict(flame_tiny(**OmegaConf.to_container(cfg.net)))  # type: ignore[arg-type]
    return {"net": net, "text_embeddings": str(cfg.cache), "lr": 1e-3, "warmup_steps": 10}


def lightning_steps(cfg: DictConfig, module: FlameModule, cached: bool, steps: int, precision: Any, root: str) -> float:
    """Steps per second of ``module`` trained by a Lightning Trainer, as scripts/train.py runs it."""
    warmup = int(cfg.warmup)
    clock = StepClock(warmup)
    trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=warmup + steps, max_epochs=-1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        gradient_clip_val=5.0, callbacks=[clock], default_root_dir=root)
    trainer.fit(module, datamodule=datamodule(cfg, cached))
    if clock.steps != warmup + steps:
        raise RuntimeError(f"expected {warmup + steps} steps, ran {clock.steps}")
    return steps / (clock.end - clock.start)


def open_clip_steps(cfg: DictConfig, precision: str) -> float:
    """Steps per second of ``open_clip_train.train.train_one_epoch`` on the same image encoder and batches."""
    from open_clip import ClipLoss
    from open_clip_train.data import DataInfo
    from open_clip_train.scheduler import cosine_lr
    from open_clip_train.train import train_one_epoch

    steps, warmup = int(cfg.steps), int(cfg.warmup)
    model = ClipOnCache(FlameModule(**module_kwargs(cfg)).net.image)
    args = SimpleNamespace(device="cpu", precision="amp_bf16" if precision.startswith("bf16") else "fp32",
                           distill=False, accum_freq=1, skip_scheduler=False, horovod=False, grad_clip_norm=5.0,
                           log_every_n_steps=10_000, batch_size=int(cfg.batch_size), world_size=1, rank=0,
                           local_rank=0, wandb=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.05)
    scheduler = cosine_lr(opt, 1e-3, 10, warmup + steps)
    batches = OpenClipBatches(datamodule(cfg, cached=True).train_dataloader(), int(cfg.batch_size))
    data = {"train": DataInfo(batches)}
    loss = ClipLoss()
    batches.num_batches = warmup
    train_one_epoch(model, data, loss, 0, opt, None, scheduler, None, args)
    batches.num_batches = steps
    start = time.perf_counter()
    train_one_epoch(model, data, loss, 1, opt, None, scheduler, None, args)
    return steps / (time.perf_counter() - start)


def run(cfg: DictConfig) -> dict[str, Any]:
    torch.set_num_threads(int(cfg.threads))
    precision = str(cfg.precision) if cfg.precision else runner.auto_precision()
    cache = EmbeddingCache.open(str(cfg.cache))
    man = cache.manifest
    llm = str(cfg.llm or man.get("llm_path") or "")
    load = os.getloadavg()
    bs = int(cfg.batch_size)
    print(f"batch {bs}, tower {dict(cfg.net)}, precision {precision}, {cfg.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} at the start; LLM {llm}", flush=True)
    result: dict[str, Any] = {"batch_size": bs, "net": OmegaConf.to_container(cfg.net), "precision": precision,
                              "threads": int(cfg.threads), "cpus": os.cpu_count(), "load_start": load[0], "llm": llm,
                              "steps": int(cfg.steps), "online_steps": int(cfg.online_steps),
                              "warmup": int(cfg.warmup), "steps_per_s": {}}
    rates = result["steps_per_s"]
    torch.manual_seed(int(cfg.seed))
    root = tempfile.mkdtemp(prefix="flame_throughput.")  # Lightning's default_root_dir; nothing is saved there
    rates["offline"] = lightning_steps(cfg, FlameModule(**module_kwargs(cfg)), True, int(cfg.steps), precision, root)
    print(f"offline (cache)   {rates['offline']:.3f} steps/s", flush=True)
    kind = "short"
    encoder = FacetEncoder(llm, FacetPrompts.from_dict(man["prompts"][kind], kind),
                           int(man.get("max_caption_tokens", 128)), dtype=str(man.get("llm_dtype", "float32")),
                           normalize=bool(man.get("normalize", True)))
    torch.manual_seed(int(cfg.seed))
    online = OnlineFlameModule(encoder, kind, **module_kwargs(cfg))
    rates["online"] = lightning_steps(cfg, online, False, int(cfg.online_steps), precision, root)
    print(f"online (LLM)      {rates['online']:.3f} steps/s", flush=True)
    torch.manual_seed(int(cfg.seed))
    rates["open_clip"] = open_clip_steps(cfg, precision)
    print(f"open_clip_train   {rates['open_clip']:.3f} steps/s", flush=True)
    result["images_per_s"] = {k: v * bs for k, v in rates.items()}
    result["offline_over_online"] = rates["offline"] / rates["online"]
    result["offline_over_open_clip"] = rates["offline"] / rates["open_clip"]
    shutil.rmtree(root, ignore_errors=True)
    result["load_end"] = os.getloadavg()[0]
    print(f"offline / online = {result['offline_over_online']:.2f}x, offline / open_clip_train = "
          f"{result['offline_over_open_clip']:.2f}x; load average {result['load_end']:.1f} at the end")
    if cfg.output:
        with atomic_open(cfg.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="flame_throughput")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "flame_throughput", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/flame_throughput.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("flame_throughput", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

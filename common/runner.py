"""Shared plumbing of the Hydra entry points: compose and check, callbacks/loggers, threads, bad-input report."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import hydra
import torch
from hydra.core.global_hydra import GlobalHydra
from lightning import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
R = TypeVar("R")

COMMAND_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "inference"
"""Config root of the commands other than train/eval/make_corpus (one ``<command>.yaml`` each)."""
BENCHMARK_CONFIGS = COMMAND_CONFIGS.parent / "benchmarks"
"""Config root of benchmarks/<name>.py (one ``<name>.yaml`` each; run with ``folder="benchmarks"``)."""


def compose(config_name: str, overrides: Sequence[str] = (), config_dir: str | Path = COMMAND_CONFIGS) -> DictConfig:
    """The config a command line of ``key=value`` overrides composes, without running Hydra's job machinery.

    A malformed override or an unknown key exits with Hydra's one-paragraph message.
    """
    from hydra.errors import HydraException

    register_resolvers()
    try:
        with hydra.initialize_config_dir(str(Path(config_dir).resolve()), version_base="1.3"):
            return hydra.compose(config_name, overrides=list(overrides))
    except HydraException as e:
        raise SystemExit(f"{config_name}: {e}") from e


@contextlib.contextmanager
def train_configs() -> Iterator[None]:
    """configs/ as Hydra's search path for ``hydra.compose`` (of train.yaml), also inside a benchmark's own
    @hydra.main (configs/benchmarks): that GlobalHydra is set aside and put back."""
    global_hydra = GlobalHydra.instance()
    saved = global_hydra.hydra if global_hydra.is_initialized() else None
    global_hydra.clear()
    try:
        with hydra.initialize_config_dir(str(COMMAND_CONFIGS.parent), version_base="1.3"):
            yield
    finally:
        global_hydra = GlobalHydra.instance()  # initialize_config_dir's exit may have swapped the singleton
        global_hydra.clear()
        if saved is not None:
            global_hydra.initialize(saved)


def require(cfg: DictConfig, command: str, folder: str = "scripts") -> DictConfig:
    """Exit with one line naming every required (``???``) top-level key the command line left unset."""
    missing = [str(k) for k in cfg if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise SystemExit(f"{command}: {', '.join(k + '=' for k in missing)} required "
                         f"(python {folder}/{command}.py --help lists the keys)")
    return cfg


def compose_and_run(config_name: str, overrides: Sequence[str], fn: Callable[[DictConfig], R],
                    config_dir: str | Path = COMMAND_CONFIGS, folder: str = "scripts") -> R:
    """Run a command in-process: ``fn`` on the config its command line with ``overrides`` would get."""
    return fn(require(compose(config_name, overrides, config_dir), config_name, folder))


def instantiate_list(cfg: DictConfig | None, kind: type) -> list[Any]:
    """Instantiate every ``_target_`` entry of a config group (``null`` entries are switched off)."""
    out: list[Any] = []
    for name, sub in (cfg or {}).items():
        if sub is None:
            continue
        obj = hydra.utils.instantiate(sub)
        if not isinstance(obj, kind):
            raise TypeError(f"{name!s}: expected a {kind.__name__}, got {type(obj).__name__}")
        out.append(obj)
    return out


def callbacks(cfg: DictConfig) -> list[Callback]:
    return instantiate_list(cfg.get("callbacks"), Callback)


def loggers(cfg: DictConfig) -> list[Logger]:
    return instantiate_list(cfg.get("logger"), Logger)


def auto_precision() -> str:
    """``bf16-mixed`` where the hardware runs bfloat16 natively (recent GPUs, AVX512-BF16/AMX CPUs), else 32-bit."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "32-true"
    return "bf16-mixed" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "32-true"


def register_resolvers() -> None:
    """``${auto_precision:}`` in configs."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("auto_precision"):
        OmegaConf.register_new_resolver("auto_precision", auto_precision)


def setup_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))


def resolve_ckpt(ckpt_path: str | None, output_dir: str) -> str | None:
    """``last`` means this run folder's ``checkpoints/last.ckpt``."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        p = Path(output_dir) / "checkpoints" / "last.ckpt"
        if not p.exists():
            raise FileNotFoundError(f"ckpt_path=last: {p} does not exist (resume with the same run_name)")
        return str(p)
    if not Path(ckpt_path).exists():
        raise FileNotFoundError(f"ckpt_path: {ckpt_path} does not exist")
    return ckpt_path


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a run summary atomically."""
    import json

    from common.io import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, ensure_ascii=False)


def report_bad_inputs(log_path: str | None) -> int:
    """Print the distinct skipped inputs of a run; returns how many there were."""
    from common.io import summarize_bad_inputs

    if not log_path or not Path(log_path).exists():
        return 0
    bad = summarize_bad_inputs(log_path)
    if bad:
        lines = "\n".join(f"  {b['audio']}: {b['reason']}" for b in bad)
        log.warning("%d input(s) skipped (details in %s):\n%s", len(bad), log_path, lines)
    return len(bad)

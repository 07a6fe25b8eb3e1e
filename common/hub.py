"""Model directories for every family: ``config.json`` + safetensors weights + the side files the config names.

A family registers each of its model types once::

    @register_model_type("ctc_conformer", files={"vocab": VOCAB})
    def build_ctc(config: dict) -> nn.Module: ...

``save_pretrained(model, dir, files={"vocab": v})`` writes ``config.json`` (``model_type``, ``format_version``,
the model's config and ``files``: role -> file name), ``model.safetensors`` and each side file, every file
atomically and ``config.json`` last, so its presence marks a whole directory. ``load_pretrained(dir)`` reads them
back through the registry. Directories written before the hub (no ``format_version``) load the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor, nn

from common.io import atomic_open, read_json_object
from common.registry import Registry

FORMAT_VERSION = 1
"""Bumped when the layout of a directory changes; 0 means written before the hub existed."""


class ModelDirError(ValueError):
    """A model directory that can't be loaded; the message names the directory and what is wrong."""


class MissingModelFile(ModelDirError, FileNotFoundError):
    """A file that a model directory must hold is not there."""


@dataclass(frozen=True)
class SideFile:
    """An object stored beside the weights (a vocabulary, a tokenizer): its file name and how to write and read it."""

    name: str
    """Default file name inside the model directory."""
    save: Callable[[Any, Path], object]
    """Writes the object to the given path (atomically)."""
    load: Callable[[Path], Any]
    """Reads the object back from the given path."""


@dataclass(frozen=True)
class Layout:
    """File names of one model inside a directory (a head stored beside a model uses its own pair)."""

    config: str = "config.json"
    weights: str = "model.safetensors"


DEFAULT_LAYOUT = Layout()


@dataclass(frozen=True)
class ModelType:
    """What the hub needs to know to rebuild a registered model from its directory."""

    name: str
    build: Callable[[dict[str, Any]], nn.Module]
    """The network with untrained weights, from the ``config.json`` dict."""
    files: Mapping[str, SideFile] = field(default_factory=dict)
    """Side files by role."""
    state_to_file: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None
    """Renames the state dict into the file's layout (a foreign format such as transformers'); None keeps it."""
    state_from_file: Callable[[dict[str, Tensor], Path], dict[str, Tensor]] | None = None
    """The inverse of ``state_to_file``; it may also refuse weights (raising ``ModelDirError``)."""
    strict: bool = True
    """Whether every weight of the network must be in the file."""
    complete_config: Callable[[dict[str, Any], Path], dict[str, Any]] | None = None
    """Adds what a foreign layout keeps outside ``config.json`` (another json beside it) before ``build``."""


MODEL_TYPES: Registry[ModelType] = Registry("model_type")


def register_model_type(
    name: str, *, files: Mapping[str, SideFile] | None = None, strict: bool = True,
    state_to_file: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    state_from_file: Callable[[dict[str, Tensor], Path], dict[str, Tensor]] | None = None,
    complete_config: Callable[[dict[str, Any], Path], dict[str, Any]] | None = None,
) -> Callable[[Callable[[dict[str, Any]], nn.Module]], Callable[[dict[str, Any]], nn.Module]]:
    """Decorator on a family's builder: ``config dict -> nn.Module``."""

    def add(build: Callable[[dict[str, Any]], nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
        MODEL_TYPES.add(name, ModelType(name, build, dict(files or {}), state_to_file, state_from_file, strict,
                                        complete_config))
        return build

    return add


@dataclass
class Pretrained:
    """A loaded model directory."""

    model: nn.Module
    config: dict[str, Any]
    files: dict[str, Any]
    """Side objects by role (``vocab``, ``tokenizer``, ...)."""
    path: Path


def model_config(model: nn.Module) -> dict[str, Any]:
    """The architecture dict of a model with a dataclass ``cfg``."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"{type(model).__name__} has no dataclass .cfg: pass config= to save_pretrained")
    return asdict(cfg)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)


def save_pretrained(
    model: nn.Module, out_dir: str | os.PathLike[str], *, model_type: str | None = None,
    config: Mapping[str, Any] | None = None, files: Mapping[str, Any] | None = None,
    layout: Layout = DEFAULT_LAYOUT, **meta: Any,
) -> Path:
    """Write ``model`` as a directory that ``load_pretrained`` reads back.

    Args:
        model_type: the registered type (default: ``model.model_type``).
        config: the architecture (default: ``asdict(model.cfg)``).
        files: side objects by role, each written with its registered ``SideFile``.
        meta: extra ``config.json`` keys (languages, training notes).
    """
    kind = model_type or getattr(model, "model_type", None)
    if not isinstance(kind, str):
        raise TypeError(f"{type(model).__name__}: pass model_type= (it has no .model_type)")
    spec = MODEL_TYPES.get(kind)
    files = dict(files or {})
    if set(files) != set(spec.files):
        raise ValueError(f"model_type {kind!r} is saved with the side files {sorted(spec.files)}, got {sorted(files)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if spec.state_to_file is not None:
        state = spec.state_to_file(state)
    with atomic_open(out / layout.weights, "wb") as f:
        f.write(save(state, metadata={"format": "pt"}))
    names = {role: spec.files[role].name for role in files}
    for role, obj in files.items():
        spec.files[role].save(obj, out / names[role])
    body = dict(model_config(model) if config is None else config)
    write_json(out / layout.config, {"model_type": kind, "format_version": FORMAT_VERSION, **body, **meta,
                                     **({"files": names} if names else {})})
    return out


def read_config(model_dir: str | os.PathLike[str], layout: Layout = DEFAULT_LAYOUT,
                expect: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """A directory's config dict; ``expect`` restricts the model types accepted (and names a config without one)."""
    d = Path(model_dir)
    path = d / layout.config
    if not d.is_dir():
        raise MissingModelFile(f"{d}: no such model directory")
    if not path.is_file():
        raise MissingModelFile(f"{d}: not a model directory ({layout.config} is missing)")
    try:
        config = read_json_object(path)
    except ValueError as e:
        raise ModelDirError(f"{path}: broken config ({str(e).removeprefix(f'{path}: ')})") from None
    wanted = (expect,) if isinstance(expect, str) else expect
    if "model_type" not in config and isinstance(expect, str):
        config["model_type"] = expect  # a head written before the hub stored its type
    kind = config.get("model_type")
    if wanted and kind not in wanted:
        raise ModelDirError(f"{path}: model_type {kind!r} is not {' or '.join(map(repr, wanted))}")
    if not isinstance(kind, str) or kind not in MODEL_TYPES:
        raise ModelDirError(f"{path}: unknown model_type {kind!r}; known: {', '.join(MODEL_TYPES.names())}")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelDirError(f"{path}: format_version {config['format_version']} is newer than this suite's "
                            f"{FORMAT_VERSION}; update the suite")
    return config


def load_pretrained(
    model_dir: str | os.PathLike[str], device: str | torch.device = "cpu", *, layout: Layout = DEFAULT_LAYOUT,
    expect: str | tuple[str, ...] | None = None,
) -> Pretrained:
    """Load a directory written by ``save_pretrained`` (or by the family code before it), in eval mode."""
    d = Path(model_dir)
    config = read_config(d, layout, expect)
    spec = MODEL_TYPES.get(config["model_type"])
    names = {role: sf.name for role, sf in spec.files.items()} | dict(config.get("files") or {})
    for name in (layout.weights, *names.values()):
        if not (d / name).exists():
            raise MissingModelFile(f"{d}: not a model directory ({name} is missing)")
    if spec.complete_config is not None:
        config = spec.complete_config(config, d)
    try:
        model = spec.build(config)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelDirError(f"{d / layout.config}: broken config for model_type {spec.name!r} ({e})") from e
    try:
        state = load_file(str(d / layout.weights), device=str(device))
    except (SafetensorError, OSError) as e:
        raise ModelDirError(f"{d / layout.weights}: unreadable weights ({e})") from e
    if spec.state_from_file is not None:
        state = spec.state_from_file(state, d)
    try:
        model.load_state_dict(state, strict=spec.strict)
    except RuntimeError as e:
        raise ModelDirError(f"{d / layout.weights}: weights don't fit the config ({e})") from e
    files = {role: spec.files[role].load(d / name) for role, name in names.items() if role in spec.files}
    return Pretrained(model.to(device).eval(), config, files, d)

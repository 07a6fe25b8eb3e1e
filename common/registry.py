"""Named registries that families fill in, so no shared module keeps a table of family names.

A family registers what it provides where it defines it::

    MODEL_TYPES = Registry("model type")

    @MODEL_TYPES.register("asr_ctc")
    def build_ctc(config): ...

Lookups that miss import the suite's plugins (the packages listed under the ``polyglot_suite.plugins`` entry
point group in ``pyproject.toml``) once and try again, so ``common`` never imports a family, yet a lookup from a
script or a shared module finds every family's entries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")

PLUGIN_GROUP = "polyglot_suite.plugins"
FALLBACK_PLUGINS = ("text.plugins", "datamodules.corpus", "speech.asr.plugins", "speech.ssl.plugins",
                    "speech.speaker.plugins", "speech.vocoder.plugins", "speech.tts.plugins",
                    "vision.flame.plugins", "speech.source_trace.plugins", "music.clamp.plugins",
                    "vision.sign.plugins")
"""Imported when the package metadata is missing (running from a checkout that was never pip-installed)."""

_plugins_loaded = False


def load_plugins() -> None:
    """Import every package that registers entries (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    names = [ep.value for ep in entry_points(group=PLUGIN_GROUP)] or list(FALLBACK_PLUGINS)
    for name in names:
        importlib.import_module(name)


class UnknownName(ValueError):
    """A registry lookup of a name nobody registered."""


class Registry(Generic[T]):
    """A name -> entry table with a clear error for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self.entries: dict[str, T] = {}
        """The table itself (tests may patch it after a lookup has loaded the plugins)."""

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (a second, different entry is an error)."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        old = self.entries.get(name)
        if old is not None and old is not obj and getattr(old, "__qualname__", None) != getattr(obj, "__qualname__", 0):
            raise ValueError(f"{self.kind} {name!r} is registered twice ({old!r} and {obj!r})")
        self.entries[name] = obj

    def __contains__(self, name: object) -> bool:
        if name in self.entries:
            return True
        load_plugins()
        return name in self.entries

    def get(self, name: str, where: str = "") -> T:
        """The entry for ``name``; an unknown name raises ``UnknownName`` naming ``where`` and the known names."""
        if name not in self:
            prefix = f"{where}: " if where else ""
            raise UnknownName(f"{prefix}unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}")
        return self.entries[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

"""Find what the app can serve under a folder: model directories, TTS bundles and retrieval indexes.

Each directory found gets one key, which the tab registry (``webapp.tabs.TABS``) maps to a tab:

* a model directory (``config.json``): its hub ``model_type`` (``common.hub.read_config``);
* a TTS bundle folder (``bundle.json``): the bundle's ``type`` (``tts_bundle``);
* a retrieval index (``manifest.json`` from scripts/retrieve.py): ``retrieval_index``.

The walk does not descend into a directory it recognised (a TTS model's ``duration/`` and ``vocoder/`` belong to
it), nor into hidden folders. A directory that can't be read (broken config, a model type no installed family
registers) is skipped with its reason, so one bad folder never takes the app down.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from common import hub
from common.io import read_json_object

log = logging.getLogger(__name__)

RETRIEVAL_INDEX = "retrieval_index"
"""The key of an index directory written by scripts/retrieve.py (common/retrieval)."""
BUNDLE_FILE = "bundle.json"
"""A TTS bundle's file (speech.tts.bundle), read here without importing the family."""
INDEX_FILE = "manifest.json"


@dataclass(frozen=True)
class Found:
    """One servable directory."""

    kind: str
    """The registry key: a hub model_type, ``tts_bundle`` or ``retrieval_index``."""
    path: Path
    """The directory."""
    name: str
    """How the page names it: the path relative to the models folder."""


@dataclass
class Discovery:
    """Everything found under a folder, and what was skipped."""

    found: list[Found] = field(default_factory=list)
    """Servable directories, in path order."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Directory -> why it was left out."""

    def of_kind(self, kinds: tuple[str, ...]) -> list[Found]:
        return [f for f in self.found if f.kind in kinds]


def kind_of(d: Path) -> str | None:
    """The key of one directory, None when it is none of the three; ``ValueError`` when it is a broken one."""
    if (d / BUNDLE_FILE).is_file():
        kind = read_json_object(d / BUNDLE_FILE).get("type")
        if not isinstance(kind, str):
            raise ValueError(f"{d / BUNDLE_FILE}: no 'type'")
        return kind
    if (d / "config.json").is_file():
        return str(hub.read_config(d)["model_type"])
    if (d / INDEX_FILE).is_file() and (d / "ids.txt").is_file():
        return RETRIEVAL_INDEX
    return None


def discover(root: str | os.PathLike[str], depth: int = 3) -> Discovery:
    """The servable directories at most ``depth`` levels below ``root`` (``root`` itself included)."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"models={root}: no such folder")
    out = Discovery()

    def visit(d: Path, level: int) -> None:
        try:
            kind = kind_of(d)
        except ValueError as e:  # hub.ModelDirError and broken JSON are ValueErrors naming the file
            out.skipped[str(d)] = str(e)
            log.warning("skipped %s: %s", d, e)
            return
        if kind is not None:
            name = d.relative_to(base).as_posix() if d != base else d.name
            out.found.append(Found(kind, d, name))
            return
        if level >= depth:
            return
        for sub in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
            visit(sub, level + 1)

    visit(base, 0)
    return out

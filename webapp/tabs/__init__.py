"""The tab registry: which tab serves which kind of directory (``webapp.discover``).

Adding a tab is one module here with ``build(found, settings)`` (it lays out its components inside the
``gr.Tab`` the app opens) and one line in ``TABS``. Tabs whose keys match nothing found are left out, so a family
that is not built yet (or whose models are not in the folder) never shows a broken tab. Modules are imported only
when their tab is shown, so a tab's dependencies load only when it has models.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from webapp.app import AppSettings
    from webapp.discover import Found


@dataclass(frozen=True)
class TabSpec:
    """One tab of the app."""

    key: str
    """Short name: the screenshot's name (docs/figures/app_<key>.png) and the tab's element id."""
    label: str
    """The tab's title in the page."""
    kinds: tuple[str, ...]
    """Discovery keys (hub model types, ``tts_bundle``, ``retrieval_index``) whose directories it serves."""
    module: str
    """The module whose ``build(found, settings)`` lays the tab out."""

    def builder(self) -> Callable[[list[Found], AppSettings], None]:
        return cast(Callable[..., None], importlib.import_module(self.module).build)


TABS: tuple[TabSpec, ...] = (
    TabSpec("transcribe", "Transcribe", ("ctc_conformer", "ctc_wav2vec2", "ctc_adapted"), "webapp.tabs.transcribe"),
    TabSpec("synthesize", "Synthesize", ("tts_flow", "tts_bundle"), "webapp.tabs.synthesize"),
    TabSpec("trace", "Trace the source", ("source_tracer",), "webapp.tabs.trace"),
    TabSpec("search", "Search", ("retrieval_index",), "webapp.tabs.search"),
    TabSpec("sign", "Translate sign", ("sign_translator",), "webapp.tabs.sign"),
)
"""In page order."""


def tab(key: str) -> TabSpec:
    """The spec named ``key``."""
    for spec in TABS:
        if spec.key == key:
            return spec
    raise KeyError(f"no tab {key!r}; tabs: {', '.join(s.key for s in TABS)}")

"""Build the app: one tab per registry entry (``webapp.tabs.TABS``) whose directories were found, and launch it.

    blocks = build_app(AppSettings(models="runs/app_models"))
    url = launch(blocks, port=7860, block=False)   # http://127.0.0.1:7860/

The app never reaches the internet: no share link, analytics off (``webapp/__init__.py`` sets the environment
before Gradio is imported), the theme's fonts are served locally, and server-side rendering (a Node process) off.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import webapp  # noqa: F401  (sets Gradio's environment before gradio is imported)

import gradio as gr  # isort: skip

from common.retrieval.engine import source_root as index_source_root
from webapp.discover import RETRIEVAL_INDEX, Discovery, discover
from webapp.tabs import TABS, TabSpec

log = logging.getLogger(__name__)


@dataclass
class AppSettings:
    """What the app serves and how (configs/app.yaml)."""

    models: str | os.PathLike[str]
    """The folder searched for model directories, TTS bundles and retrieval indexes."""
    media: list[str] = field(default_factory=list)
    """Folders holding the files the indexes were built from: search results (ids relative to the indexed folder)
    are looked up there, then beside the index."""
    device: str = "cpu"
    """Where models run."""
    depth: int = 3
    """How many folder levels below ``models`` are searched."""
    title: str = "polyglot-suite"
    """The page's title."""


@dataclass
class Built:
    """The app and what went into it."""

    blocks: gr.Blocks
    tabs: list[TabSpec]
    """The tabs shown, in page order."""
    discovery: Discovery


def build_app(settings: AppSettings) -> Built:
    """The ``gr.Blocks`` with a tab for each registry entry that has models; an error when none has."""
    found = discover(settings.models, settings.depth)
    shown = [spec for spec in TABS if found.of_kind(spec.kinds)]
    if not shown:
        kinds = sorted({f.kind for f in found.found})
        raise ValueError(f"models={settings.models}: nothing the app serves was found "
                         f"(found: {', '.join(kinds) or 'no model directories'}; served: "
                         f"{', '.join(k for s in TABS for k in s.kinds)})")
    with gr.Blocks(title=settings.title, analytics_enabled=False) as blocks:
        gr.Markdown(f"# {settings.title}\nModels from `{settings.models}`: "
                    + ", ".join(f"{s.label.lower()} ({len(found.of_kind(s.kinds))})" for s in shown))
        with gr.Tabs():
            for spec in shown:
                with gr.Tab(spec.label, id=spec.key, elem_id=f"tab-{spec.key}"):
                    spec.builder()(found.of_kind(spec.kinds), settings)
    for d, why in found.skipped.items():
        log.warning("left out %s: %s", d, why)
    return Built(blocks, shown, found)


def allowed_paths(settings: AppSettings, found: Discovery | None = None) -> list[str]:
    """Folders whose files the page may show (search results): the media folders, the models folder, and the
    folders that the found retrieval indexes were built from."""
    roots = [index_source_root(f.path) for f in found.of_kind((RETRIEVAL_INDEX,))] if found is not None else []
    return [str(Path(p).resolve()) for p in [*settings.media, settings.models, *(r for r in roots if r is not None)]]


def launch(built: Built, settings: AppSettings, host: str = "127.0.0.1", port: int = 7860,
           block: bool = True) -> str:
    """Serve the app on ``host:port``; with ``block=False`` it runs in a background thread. Returns its URL."""
    built.blocks.queue(default_concurrency_limit=1)  # one model call at a time on a small machine
    _, url, _ = built.blocks.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                                    prevent_thread_lock=not block, show_error=True, quiet=not block,
                                    allowed_paths=allowed_paths(settings, built.discovery), ssr_mode=False, pwa=False,
                                    mcp_server=False, footer_links=[])
    return str(url)

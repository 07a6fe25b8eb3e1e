"""Pieces every tab uses: bad input shown in the page, models loaded once, files written for download."""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import gradio as gr

from speech.audio import AudioError

log = logging.getLogger(__name__)
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

UPLOAD_DIR = re.compile(r"[^\s'\"(]*gradio/[0-9a-f]{16,}/")
"""The folder part of an uploaded file's path (Gradio keeps uploads in <temp>/gradio/<hash>/<name>)."""
USER_ERRORS = (ValueError, AudioError, FileNotFoundError, OSError, KeyError)
"""What bad input raises in the families (each names the file and the reason): shown as it is."""


def user_errors(fn: F) -> F:
    """Show a handler's failure as a message in the page (gr.Error) and keep serving.

    Errors of the input carry the families' own wording; anything else is logged with its trace and shown as
    an internal error, never as a dead page.
    """

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as e:
            raise gr.Error(message(e), duration=None) from None
        except Exception as e:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(f"internal error ({type(e).__name__}: {e})", duration=None) from None

    return wrapped  # type: ignore[return-value]


def message(e: BaseException) -> str:
    """The error's text as the person who uploaded the file knows it: uploads by name, not by temporary path."""
    return UPLOAD_DIR.sub("", str(e).strip("'\""))


class Loaded(Generic[T]):
    """Models by directory, each loaded on first use and kept; one load at a time."""

    def __init__(self, load: Callable[[Path], T]):
        self.load = load
        self.cache: dict[Path, T] = {}
        self.lock = threading.Lock()

    def __call__(self, path: Path) -> T:
        with self.lock:
            if path not in self.cache:
                log.info("loading %s", path)
                self.cache[path] = self.load(path)
            return self.cache[path]


def upload(path: str | None, what: str) -> Path:
    """An uploaded file's path; a clear message when nothing was uploaded or the file is empty."""
    if not path:
        raise gr.Error(f"No {what}: upload a file or record one first.", duration=None)
    p = Path(path)
    if not p.is_file():
        raise gr.Error(f"{what}: the upload {p.name} did not arrive; try again.", duration=None)
    if p.stat().st_size == 0:
        raise gr.Error(f"{what} {p.name}: empty file (0 bytes)", duration=None)
    return p


def output_dir(prefix: str) -> Path:
    """A fresh folder for one request's downloads, under the temp folder Gradio serves files from."""
    return Path(tempfile.mkdtemp(prefix=f"polyglot-app-{prefix}-"))


def choose(found_names: list[str], name: str | None) -> str:
    """The model picked in a dropdown, or a clear message when the choice is stale."""
    if name not in found_names:
        raise gr.Error(f"Unknown model {name!r}; pick one of {', '.join(found_names)}.", duration=None)
    assert name is not None
    return name

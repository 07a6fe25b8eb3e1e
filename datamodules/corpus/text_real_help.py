"""LibreOffice's translated help pages as parallel text: paragraphs aligned with the English help by page and id.

``libreoffice-help-<locale>`` ships the help as HTML under ``usr/share/libreoffice/help/<locale>/text/``, one file per
page, the same pages in every language. Every paragraph and heading carries the id of its source paragraph
(``<p id="par_id3154943">``), so a page's paragraphs pair with the English page's (``libreoffice-help-en-us``) by id.
The pages are only parsed (``html.parser``): no script in them runs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

HELP_ROOT = "usr/share/libreoffice/help"
ENGLISH_HELP = "libreoffice-help-en-us"
"""The package of the English pages that every other language pairs with."""
_ALIGNED = re.compile(r"(par|hd)_")
_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "li"})


class _Paragraphs(HTMLParser):
    """Text of every block element whose id is a source paragraph id; nested inline markup is flattened."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, str] = {}
        self._open: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag in _BLOCKS and ident and _ALIGNED.match(ident):
            self._open.append((tag, ident, []))
        elif self._open and tag == self._open[-1][0]:
            self._open.append((tag, None, []))  # a nested element of the same kind: its end must not close ours

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            return
        _, ident, parts = self._open.pop()
        if ident:
            self.found[ident] = " ".join("".join(parts).split())
        if self._open:
            self._open[-1][2].extend(parts)

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def paragraphs(page: Path) -> dict[str, str]:
    """Paragraph id -> text of one help page (an unreadable page has none)."""
    parser = _Paragraphs()
    try:
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    except (OSError, AssertionError):
        return {}
    return parser.found


def help_locales(tree: Path) -> list[tuple[str, Path]]:
    """(locale, folder) of every help language in an unpacked package, with ``_`` for ``-`` (pt-BR -> pt_BR)."""
    root = tree / HELP_ROOT
    if not root.is_dir():
        return []
    return sorted((d.name.replace("-", "_"), d) for d in root.iterdir() if (d / "text").is_dir())


@functools.lru_cache(maxsize=2)
def _english(folder: Path) -> dict[str, dict[str, str]]:
    """Page (relative path) -> its paragraphs, for the English help folder (read once for all languages)."""
    return {str(p.relative_to(folder)): paragraphs(p) for p in sorted((folder / "text").rglob("*.html"))}


def help_pairs(folder: Path, english_folder: Path) -> Iterator[tuple[str, str, str]]:
    """(page#id, English text, translated text) for every paragraph of ``folder`` that the English page also has."""
    for page, source in _english(english_folder).items():
        target = folder / page
        if not source or not target.is_file():
            continue
        for ident, text in paragraphs(target).items():
            english = source.get(ident)
            if english and text:
                yield f"{page}#{ident}", english, text

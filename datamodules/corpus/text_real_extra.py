"""Keyed and monolingual extras of the real text corpus: CLDR names (parallel by key) and wordfreq word lists."""

from __future__ import annotations

import functools
from typing import Any

from datamodules.corpus.text_real_sources import locale_to_lang, script_share

CLDR_TABLES = ("territories", "languages", "scripts", "currencies", "months", "days")


@functools.cache
def babel_locale(lang: str) -> str | None:
    """The babel/CLDR locale that writes an iso639-3_Script language (None where CLDR has none)."""
    from babel.localedata import locale_identifiers

    for ident in sorted(locale_identifiers(), key=len):
        parts = ident.split("_")
        if len(parts) > 2 or (len(parts) == 2 and len(parts[1]) != 4):
            continue  # regional variants: the bare language (or language_Script) is the standard
        mapped = locale_to_lang(parts[0])
        if mapped and f"{mapped[0].split('_')[0]}_{parts[1] if len(parts) == 2 else mapped[0].split('_')[1]}" == lang:
            return ident
    return None


def _table(locale: Any, name: str) -> dict[str, str]:
    if name in ("months", "days"):
        return {f"{name}-{k}": v for k, v in getattr(locale, name)["format"]["wide"].items()}
    return {f"{name}-{k}": v for k, v in getattr(locale, name).items()}


def cldr_rows(langs: list[str], provenance: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per CLDR name key (territory DE, language de, ...) with that name in every language CLDR has."""
    import babel
    from babel import Locale
    from babel.core import get_cldr_version

    english = Locale.parse("en")
    locales = {lang: babel_locale(lang) for lang in langs}
    rows: dict[str, dict[str, Any]] = {}
    for table in CLDR_TABLES:
        names = {lang: _table(Locale.parse(ident), table) for lang, ident in locales.items() if ident}
        for key, eng in _table(english, table).items():
            texts = {"eng_Latn": eng}
            for lang, table_names in names.items():
                name = table_names.get(key)
                if name and lang != "eng_Latn" and script_share(name, lang) >= 0.8:
                    texts[lang] = name
            if len(texts) > 1:
                rows.setdefault(eng.casefold(), {"meaning": {"source": "cldr", "domain": table, "msgid": key},
                                                 "texts": texts})
    provenance.append({"source": "cldr", "kind": f"CLDR {get_cldr_version()} via babel {babel.__version__}",
                       "split": "train",
                       "licence": "Unicode-3.0 (Unicode License v3, CLDR data)", "rows": len(rows),
                       "langs": sorted(k for k, v in locales.items() if v), "skipped": [], "errors": []})
    return rows


def mono_words(lang: str, n: int) -> list[str]:
    """The ``n`` most frequent wordfreq words of the language, twelve to a line (empty where wordfreq lacks it)."""
    ident = babel_locale(lang)
    if not n or ident is None or "_" in ident:
        return []
    import wordfreq

    if ident not in wordfreq.available_languages():
        return []
    words = [w for w in wordfreq.top_n_list(ident, n) if script_share(w, lang) >= 0.8]
    return [" ".join(words[i: i + 12]) for i in range(0, len(words), 12)]

"""Language codes as users write them (de, deu, de-DE, de_DE, zh-TW, deu_Latn) to the suite's iso639-3_Script codes.

``resolve(code, known)`` picks the code among the languages a model knows (``known``); without such a list it
builds the canonical ``iso639-3_Script`` code. ISO 639-1/639-3 equivalences and default scripts come from
babel's CLDR data (``language_aliases``, ``likely_subtags``); macrolanguages map to the member that models are
trained on through ``MACRO_MEMBERS``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from babel.core import get_global

MACRO_MEMBERS = {
    "ara": "arb", "zho": "cmn", "swa": "swh", "fas": "pes", "msa": "zsm", "est": "ekk", "lav": "lvs",
    "aze": "azj", "uzb": "uzn", "nep": "npi", "ori": "ory", "orm": "gaz", "pus": "pbt", "mon": "khk",
    "yid": "ydd", "kur": "kmr", "sqi": "als", "nor": "nob", "grn": "gug", "mlg": "plt", "que": "quy",
    "kok": "gom", "hbs": "srp",
}
"""Macrolanguage -> the individual language that corpora (FLORES-200, Omnilingual ASR) use for it."""
MACRO_OF = {member: macro for macro, member in MACRO_MEMBERS.items()}

NO_DEFAULT_SCRIPT = frozenset({"srp"})
"""Languages written in two scripts about equally (Serbian: Cyrillic and Latin): CLDR's default is not taken."""

BIBLIOGRAPHIC = frozenset({"alb", "arm", "baq", "bur", "chi", "cze", "dut", "fre", "geo", "ger", "gre", "ice",
                           "mac", "mao", "may", "per", "rum", "scc", "slo", "tib", "wel"})
"""ISO 639-2/B codes: accepted, but never the canonical form (that is the terminological 639-2/T code)."""

MAX_LISTED = 60
"""Languages named in an error message; a model with more gets "... and N more"."""


class LanguageError(ValueError):
    """A language code that does not resolve: malformed, unknown (to the model), or ambiguous."""


@dataclass(frozen=True)
class Tag:
    """A code split into its parts, normalised: language (lower), script (Title) and region (upper)."""

    lang: str
    script: str | None = None
    region: str | None = None


def parse(code: str) -> Tag:
    """``de``, ``deu``, ``de-DE``, ``de_DE``, ``deu_Latn``, ``zh-Hant-TW`` ... as a ``Tag``."""
    parts = code.strip().replace("-", "_").split("_")
    lang, rest = parts[0].lower(), parts[1:]
    if not (2 <= len(lang) <= 3 and lang.isascii() and lang.isalpha()):
        raise LanguageError(f"{code!r} is not a language code (expected e.g. de, deu, de-DE or deu_Latn)")
    script = region = None
    for p in rest:
        if len(p) == 4 and p.isalpha() and script is None and region is None:
            script = p.title()
        elif ((len(p) == 2 and p.isalpha()) or (len(p) == 3 and p.isdigit())) and region is None:
            region = p.upper()
        else:
            raise LanguageError(f"{code!r} is not a language code (expected e.g. de, deu, de-DE or deu_Latn)")
    return Tag(lang, script, region)


@functools.cache
def _aliases() -> tuple[dict[str, str], dict[str, list[str]]]:
    """CLDR's alias -> tag table and, per ISO 639-1 code, the plain 3-letter codes that alias to it."""
    aliases: dict[str, str] = {str(k): str(v) for k, v in get_global("language_aliases").items()}
    three: dict[str, list[str]] = {}
    for k, v in aliases.items():
        if len(k) == 3 and "_" not in v and k not in BIBLIOGRAPHIC:  # "prs" -> "fa_AF" is its own language
            three.setdefault(v, []).append(k)
    return aliases, three


def _likely() -> Mapping[str, str]:
    return get_global("likely_subtags")


def iso3(lang: str) -> str:
    """The ISO 639-3 code of a 2- or 3-letter code (``de`` -> ``deu``, ``ger`` -> ``deu``, ``ar`` -> ``ara``)."""
    aliases, three = _aliases()
    if lang in BIBLIOGRAPHIC:
        lang = aliases.get(lang, lang).split("_")[0]
    if len(lang) == 3:
        return lang
    found = three.get(lang, [])
    if len(found) > 1:  # ar -> ara and arb: an ISO 639-1 code names the macrolanguage
        found = [c for c in found if c in MACRO_MEMBERS] or found
    return found[0] if len(found) == 1 else lang


def _cldr(lang3: str) -> str:
    """The tag CLDR files a 3-letter code under (``deu`` -> ``de``, ``prs`` -> ``fa_AF``, ``yue`` -> ``yue``)."""
    return _aliases()[0].get(lang3, lang3)


def _known_to_cldr(lang: str) -> bool:
    aliases, three = _aliases()
    return lang in aliases or lang in three or lang in _likely() or lang in MACRO_MEMBERS or lang in MACRO_OF


def _script_of(tag: str | None) -> str | None:
    parts = (tag or "").split("_")
    return parts[1] if len(parts) > 1 and len(parts[1]) == 4 else None


def region_script(lang3: str, region: str | None) -> str | None:
    """The script a region implies where CLDR has one for it (zh + TW -> Hant, sr + ME -> Latn)."""
    if region is None:
        return None
    base = _cldr(lang3).split("_")[0]
    return _script_of(_likely().get(f"{base}_{region}"))


def default_script(lang3: str) -> str | None:
    """CLDR's likely script of a language (None for one without data, or one in ``NO_DEFAULT_SCRIPT``)."""
    if lang3 in NO_DEFAULT_SCRIPT or MACRO_MEMBERS.get(lang3) in NO_DEFAULT_SCRIPT:
        return None
    tag = _cldr(lang3)
    return _script_of(tag) or _script_of(_likely().get(tag)) or _script_of(_likely().get(tag.split("_")[0]))


def _listing(known: list[str]) -> str:
    shown = ", ".join(known[:MAX_LISTED])
    return shown + (f" ... and {len(known) - MAX_LISTED} more" if len(known) > MAX_LISTED else "")


def canonical(code: str) -> str:
    """The ``iso639-3_Script`` code of ``code`` on its own (``ar`` -> ``arb_Arab``, ``zh-TW`` -> ``cmn_Hant``)."""
    tag = parse(code)
    lang3 = iso3(tag.lang)
    if not _known_to_cldr(tag.lang) and (len(tag.lang) == 2 or tag.script is None):
        raise LanguageError(f"unknown language code {code!r}")
    script = tag.script or region_script(lang3, tag.region) or default_script(lang3)
    if script is None:
        why = "is written in more than one script" if lang3 in NO_DEFAULT_SCRIPT or \
            MACRO_MEMBERS.get(lang3) in NO_DEFAULT_SCRIPT else "has no known default script"
        raise LanguageError(f"language {code!r} {why}: write it with one, e.g. {lang3}_Latn or {lang3}_Cyrl")
    return f"{MACRO_MEMBERS.get(lang3, lang3)}_{script}"


def _model_tag(code: str) -> Tag | None:
    """A model's own language code parsed, or None for one that is no language code (matched exactly only)."""
    try:
        return parse(code)
    except LanguageError:
        return None


def resolve(code: str, known: Iterable[str] | None = None) -> str:
    """The language among ``known`` (a model's codes) that ``code`` means; with no ``known``, ``canonical(code)``.

    Raises ``LanguageError`` naming the code and listing the model's languages when none or several fit.
    """
    langs = sorted(set(known or ()))
    if not langs:
        return canonical(code)
    if code in langs:
        return code
    tag = parse(code)
    lang3 = iso3(tag.lang)
    # Rank: the same language, then the macrolanguage's member (ara -> arb), then the macrolanguage itself.
    rank: dict[str, int] = {}
    for i, c in enumerate([lang3, MACRO_MEMBERS.get(lang3), MACRO_OF.get(lang3)]):
        if c is not None:
            rank.setdefault(c, i)
    tags = {k: t for k in langs if (t := _model_tag(k)) is not None}
    found = [(rank[b], k) for k, t in tags.items() if (b := iso3(t.lang)) in rank]
    if found:
        best = min(r for r, _ in found)
        found = [(r, k) for r, k in found if r == best]
    cands = [k for _, k in found]
    if not cands:
        raise LanguageError(f"language {code!r} is not one this model knows (its languages: {_listing(langs)})")
    scripts = {tags[k].script for k in cands}
    want = tag.script or region_script(lang3, tag.region)
    if want is None and len(scripts) > 1:
        want = default_script(lang3)
    if want is not None:
        cands = [k for k in cands if tags[k].script in (want, None)]
    if not cands:
        raise LanguageError(f"language {code!r} ({want} script) is not one this model knows "
                            f"(its languages: {_listing(langs)})")
    if len(cands) > 1:
        raise LanguageError(f"language {code!r} is ambiguous for this model: write one of {', '.join(cands)}")
    return cands[0]


def resolve_or_none(code: str | None, known: Iterable[str] | None = None) -> str | None:
    """``resolve`` that passes None (no language given) through."""
    return None if code is None else resolve(code, known)

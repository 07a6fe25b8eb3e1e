"""Real parallel text from Debian packages' gettext catalogs: fetching, reading .mo files, cleaning, language codes.

A catalog maps English message ids to one language's translations, so catalogs of one domain in several languages
align by msgid. Catalogs the base system ships (``/usr/share/locale``) are reserved test text: never read here.
"""

from __future__ import annotations

import functools
import html
import re
import shutil
import struct
import subprocess
import tarfile
import unicodedata
from pathlib import Path

from babel.core import get_global

# ISO 639-1 -> the ISO 639-3 code the suite uses; macrolanguages map to the individual language FLORES/SONAR name.
_ISO3 = dict(re.findall(r"(\w+):(\w+)", (
    "af:afr am:amh an:arg ar:arb as:asm az:azj be:bel bg:bul bn:ben bo:bod br:bre bs:bos ca:cat ce:che cs:ces cv:chv "
    "cy:cym da:dan de:deu dz:dzo ee:ewe el:ell en:eng eo:epo es:spa et:est eu:eus fa:pes ff:ful fi:fin fo:fao fr:fra "
    "fy:fry ga:gle gd:gla gl:glg gn:grn gu:guj gv:glv ha:hau he:heb hi:hin hr:hrv ht:hat hu:hun hy:hye ia:ina id:ind "
    "ie:ile ig:ibo io:ido is:isl it:ita iu:iku ja:jpn jv:jav ka:kat kk:kaz kl:kal km:khm kn:kan ko:kor ks:kas ku:kmr "
    "kw:cor ky:kir la:lat lb:ltz lg:lug li:lim ln:lin lo:lao lt:lit lv:lvs mg:plt mi:mri mk:mkd ml:mal mn:khk mr:mar "
    "ms:zsm mt:mlt my:mya nb:nob ne:npi nl:nld nn:nno no:nob nr:nbl ny:nya oc:oci om:gaz or:ory os:oss pa:pan pl:pol "
    "ps:pbt pt:por qu:quy rm:roh ro:ron ru:rus rw:kin sa:san sc:srd sd:snd se:sme si:sin sk:slk sl:slv sm:smo sn:sna "
    "so:som sq:als sr:srp ss:ssw st:sot sv:swe sw:swh ta:tam te:tel tg:tgk th:tha ti:tir tk:tuk tl:tgl tn:tsn to:ton "
    "tr:tur ts:tso tt:tat tw:twi ug:uig uk:ukr ur:urd uz:uzn ve:ven vi:vie wa:wln wo:wol xh:xho yi:ydd yo:yor "
    "zh:cmn zu:zul"
)))
_MACRO3 = {"ara": "arb", "zho": "cmn", "fas": "pes", "msa": "zsm", "swa": "swh", "nor": "nob", "est": "est"}
_SCRIPT_MODIFIERS = {"latin": "Latn", "ijekavianlatin": "Latn", "iqtelif": "Latn", "cyrillic": "Cyrl",
                     "devanagari": "Deva", "arabic": "Arab"}
_LOCALE = re.compile(r"^(?P<lang>[a-z]{2,3})(?:_(?P<region>[A-Za-z0-9]+))?(?:\.[\w-]+)?(?:@(?P<mod>\w+))?$")


def locale_to_lang(locale: str) -> tuple[str, int] | None:
    """A gettext locale name (de, pt_BR, sr@latin, zh_CN) -> (iso639-3_Script, rank); lower ranks are preferred.

    Rank 0 is the bare language, 1 its most likely region, 2 another region; variants (ca@valencia) add 3.
    """
    m = _LOCALE.match(locale)
    if m is None:
        return None
    lang, region, mod = m["lang"], m["region"], m["mod"]
    iso3 = _ISO3.get(lang) if len(lang) == 2 else _MACRO3.get(lang, lang)
    if iso3 is None:
        return None
    likely = dict(get_global("likely_subtags"))
    parts = likely.get(f"{lang}_{region}" if region else lang, likely.get(lang, "")).split("_")
    script = _SCRIPT_MODIFIERS.get(mod or "") or next((p for p in parts[1:] if len(p) == 4), "")
    if not script:
        return None
    base = likely.get(f"{lang}_{script}", likely.get(lang, "")).split("_")
    rank = 0 if not region else 1 if region == base[-1] else 2
    if mod and mod not in _SCRIPT_MODIFIERS:
        rank += 3
    return f"{iso3}_{script}", rank


def read_mo(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a compiled gettext catalog (singular forms, contexts dropped, header skipped).

    Raises ``ValueError`` naming the file when it is not a readable .mo catalog.
    """
    data = path.read_bytes()
    try:
        magic = struct.unpack("<I", data[:4])[0]
        endian = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else ""
        if not endian:
            raise ValueError("bad magic number")
        _, count, orig_at, trans_at = struct.unpack(endian + "4I", data[4:20])
        if max(orig_at, trans_at) + 8 * count > len(data):
            raise ValueError(f"its tables of {count} strings run past the end of the file")
        origs = struct.iter_unpack(endian + "2I", data[orig_at: orig_at + 8 * count])
        trans = struct.iter_unpack(endian + "2I", data[trans_at: trans_at + 8 * count])
        raw: list[tuple[bytes, bytes]] = []
        for (olen, ooff), (tlen, toff) in zip(origs, trans, strict=True):
            if ooff + olen > len(data) or toff + tlen > len(data):
                raise ValueError(f"string {len(raw)} points past the end of the file")
            raw.append((data[ooff: ooff + olen], data[toff: toff + tlen]))
        header = dict(raw).get(b"", b"").decode("ascii", "replace")
        found = re.search(r"charset=([\w-]+)", header)
        charset = found[1] if found else "utf-8"
        out: dict[str, str] = {}
        for mid, mstr in raw:
            if not mid:
                continue
            key = mid.split(b"\x00")[0].split(b"\x04")[-1].decode(charset)
            out.setdefault(key, mstr.split(b"\x00")[0].decode(charset))
        return out
    except (struct.error, UnicodeDecodeError, LookupError, ValueError) as e:
        raise ValueError(f"{path}: not a readable gettext .mo catalog ({e})") from e


# Where packages keep their catalogs: the gettext tree, and LibreOffice's own (libreoffice-l10n-<locale>).
LIBREOFFICE_ROOT = "usr/lib/libreoffice/program/resource"
CATALOG_ROOTS = ("usr/share/locale", LIBREOFFICE_ROOT)
_LIBREOFFICE_HOLE = re.compile(r"\$\(|%\d")
_LIBREOFFICE_ACCEL = re.compile(r"\s*[(（]~[^\W_][)）]|~(?=[^\W_])")


def catalogs(root: Path) -> list[tuple[str, str, Path]]:
    """(domain, locale, path) of every catalog under a locale folder (``<locale>/LC_MESSAGES/<domain>.mo``)."""
    if not root.is_dir():
        return []
    return sorted((p.stem, p.parent.parent.name, p) for p in root.glob("*/LC_MESSAGES/*.mo"))


def package_catalogs(tree: Path) -> list[tuple[str, str, Path]]:
    """catalogs() of every CATALOG_ROOTS folder of an unpacked package."""
    return [c for sub in CATALOG_ROOTS for c in catalogs(tree / sub)]


_PLACEHOLDER = re.compile(r"%(\d+\$)?[-+ #0']*(\d+|\*)?(\.\d+)?(hh|h|ll|l|L|q|j|z|t|I64|I)?[diouxXeEfFgGaAcspn%]"
                          r"|%\(\w+\)|\{[^{}]*\}|\$\{|\$\w|%[A-Za-z]")
_TECHNICAL = re.compile(r"://|www\.|@\w|\\|\t|`|--\w|(^|\s)[~.]?/\w|\w/\w+/|=|\||\[|\]|#\w|_.*_")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_ACCEL = re.compile(r"\s*[(（][_&][^\W_][)）]|[_&](?=[^\W_])")
_SCRIPT_NAMES = {"Latn": ("LATIN",), "Cyrl": ("CYRILLIC",), "Arab": ("ARABIC",), "Deva": ("DEVANAGARI",),
                 "Hans": ("CJK",), "Hant": ("CJK",), "Jpan": ("CJK", "HIRAGANA", "KATAKANA"), "Kore": ("HANGUL", "CJK"),
                 "Grek": ("GREEK",), "Hebr": ("HEBREW",), "Thai": ("THAI",), "Geor": ("GEORGIAN",),
                 "Armn": ("ARMENIAN",), "Beng": ("BENGALI",), "Taml": ("TAMIL",), "Telu": ("TELUGU",),
                 "Knda": ("KANNADA",), "Mlym": ("MALAYALAM",), "Gujr": ("GUJARATI",), "Guru": ("GURMUKHI",),
                 "Orya": ("ORIYA",), "Sinh": ("SINHALA",), "Khmr": ("KHMER",), "Laoo": ("LAO",), "Mymr": ("MYANMAR",),
                 "Ethi": ("ETHIOPIC",), "Tibt": ("TIBETAN",), "Thaa": ("THAANA",)}


def clean_message(text: str) -> str | None:
    """A message as plain text (markup, accelerators and extra whitespace gone), or None for non-prose strings."""
    if _PLACEHOLDER.search(text):
        return None  # placeholders stay out: a sentence with a hole is not a sentence
    text = _TAG.sub("", text)
    if _TECHNICAL.search(text):
        return None  # URLs, paths, options, identifiers (two underscores: one is an accelerator)
    text = _ENTITY.sub(lambda m: html.unescape(m[0]), text)  # only whole entities: "&Notify" is an accelerator
    text = " ".join(_ACCEL.sub("", text.replace("&&", "\x00")).replace("\x00", "&").split())
    if not text or "<" in text or ">" in text:
        return None
    letters = sum(unicodedata.category(c)[0] == "L" for c in text)
    return text if letters >= 0.5 * len(text.replace(" ", "")) else None


def libreoffice_message(text: str) -> str | None:
    """A LibreOffice message with its ~ accelerators cut, or None when it has a hole ($(ARG1), %1) to fill.

    Only LibreOffice's catalogs get this: elsewhere ~ is not an accelerator (Scheme's ``~a`` is a hole).
    """
    return None if _LIBREOFFICE_HOLE.search(text) else _LIBREOFFICE_ACCEL.sub("", text)


def script_share(text: str, lang: str) -> float:
    """Share of the letters of ``text`` written in the language's script (1.0 where the script is not known)."""
    names = _SCRIPT_NAMES.get(lang.split("_")[-1])
    letters = [c for c in text if unicodedata.category(c)[0] == "L"]
    if names is None or not letters:
        return 1.0 if letters else 0.0
    return sum(unicodedata.name(c, "").startswith(names) for c in letters) / len(letters)


@functools.lru_cache(maxsize=1 << 16)
def _clean_english(text: str, min_words: int, max_words: int) -> str | None:
    """clean_message of an English message within the word limits; cached because every catalog repeats it."""
    eng = clean_message(text)
    return eng if eng is not None and min_words <= len(eng.split()) <= max_words else None


def clean_pair(english: str, translation: str, lang: str, min_words: int, max_words: int) -> tuple[str, str] | None:
    """A cleaned (English, translation) pair, or None when either side is not usable prose."""
    eng = _clean_english(english, min_words, max_words)
    tr = None if eng is None else clean_message(translation)  # most rejects are English-side: skip the translation
    if eng is None or tr is None:
        return None
    if tr.casefold() == eng.casefold() or not 0.15 <= len(tr) / len(eng) <= 4.0:
        return None  # untranslated copy, or a translation of something else
    return (eng, tr) if script_share(tr, lang) >= 0.8 else None


def download(package: str, debs: Path) -> Path:
    """The package's .deb, fetched with ``apt-get download`` into ``debs`` unless it is there already."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not found:
        raise RuntimeError(f"apt-get download {package} failed: {done.stderr.strip() or done.stdout.strip()}")
    return found[-1]


def prefetch(packages: list[str], debs: Path) -> None:
    """Fetch the missing .debs of many packages in one ``apt-get download`` (a failure is left to ``download``)."""
    missing = [p for p in packages if not any(debs.glob(f"{p}_*.deb"))]
    if missing:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True)


UNPACKED = ("usr/share/locale/", "usr/share/doc/", "usr/lib/libreoffice/program/resource/",
            "usr/share/libreoffice/help/")
"""What ``unpack`` keeps of a .deb: catalogs, copyright files and LibreOffice's resources and help."""


def unpack(deb: Path, tree: Path) -> None:
    """Unpack the ``UNPACKED`` folders of a .deb into ``tree`` (never installed; links may not leave ``tree``)."""
    tmp = tree.with_name(tree.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                if member.name.removeprefix("./").startswith(UNPACKED):
                    tar.extract(member, tmp, filter="data")
    except (tarfile.TarError, OSError) as e:
        proc.kill()
        raise RuntimeError(f"{deb}: cannot unpack: {e}") from e
    finally:
        err = proc.communicate()[1]
    if proc.returncode != 0:
        raise RuntimeError(f"{deb}: dpkg-deb --fsys-tarfile failed: {err.decode(errors='replace').strip()}")
    tmp.rename(tree)


@functools.cache
def installed(package: str) -> bool:
    """True when dpkg says the package is installed on this machine (asked once per package and process: a build
    asks for each package before fetching and again when reading it)."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package], capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0 and done.stdout.strip() == "installed"


def licence(tree: Path, package: str) -> str:
    """The licences named in the package's ``usr/share/doc/<pkg>/copyright`` (DEP-5 ``License:`` fields)."""
    doc = tree / "usr/share/doc"
    paths = [doc / package / "copyright", *sorted(doc.glob("*/copyright"))]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        return "unknown (no copyright file in the package)"
    text = path.read_text(encoding="utf-8", errors="replace")
    names = list(dict.fromkeys(m.strip() for m in re.findall(r"^License:[ \t]*(\S[^\n]*)", text, re.M)))
    return ", ".join(names) if names else f"see {path.relative_to(tree)} (not machine-readable)"

"""Real parallel text: Debian packages' translation catalogs aligned by message id, plus CLDR names and wordfreq words.

Writes under ``out_dir``: ``parallel/{split}.jsonl`` (id, meaning = where the row came from, texts per language; a row
holds every language that translates it), ``parallel/{split}.eng_Latn-{lang}.tsv``, ``mono/{lang}.txt`` (training
sentences, then wordfreq words) and ``stats.json`` (sources with licences, skipped and unreadable catalogs, counts).
Splits: train, dev, test, and test_ood from the held-out packages, none of which is ever training text. No sentence
of a language appears twice in the corpus. The base system's own catalogs (``system_locale_dir``) are reserved test
text: their domains, their packages and their English messages are never read into any split.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus import text_real_help as helpdocs
from datamodules.corpus import text_real_sources as src
from datamodules.corpus.text import _write_lines, existing_corpus
from datamodules.corpus.text_real_extra import cldr_rows, mono_words
from text.parallel import PIVOT

log = logging.getLogger(__name__)

SPLITS = ("test_ood", "test", "dev", "train")
"""In the order they claim sentences: a sentence goes to the first split that has it."""
Rows = dict[str, dict[str, Any]]
"""Casefolded English text -> {"meaning": provenance, "texts": {lang: sentence}}."""


@dataclass
class RealTextCorpusConfig:
    """Which packages to read and how to split them."""

    out_dir: str = "data/text_real"
    """Output folder."""
    src_dir: str = "data/debian_l10n"
    """Downloaded .debs (``debs/``) and their unpacked trees (``unpacked/<pkg>/``); a tree already there is reused."""
    packages: list[str] = field(default_factory=list)
    """Debian packages whose catalogs are training (and dev/test) text."""
    heldout_packages: list[str] = field(default_factory=list)
    """Debian packages read only into test_ood (out-of-domain test)."""
    system_locale_dir: str = "/usr/share/locale"
    """The base system's catalogs: reserved test text, never read into the corpus."""
    langs: list[str] = field(default_factory=list)
    """Languages to keep (iso639-3_Script); empty keeps every language with ``min_lang_rows`` training rows."""
    min_lang_rows: int = 50
    """Fewest training rows for a language to be kept when ``langs`` is empty."""
    min_words: int = 3
    """Fewest English words of a message."""
    max_words: int = 40
    """Most English words of a message."""
    dev: int = 500
    """Development rows."""
    test: int = 1000
    """In-domain test rows."""
    test_ood: int = 0
    """Most out-of-domain test rows (0 = every usable held-out row)."""
    heldout_first: bool = False
    """A message a held-out package shares with training packages stays in test_ood and leaves training (false: the
    reverse), and no held-out sentence is in another split in any language. True keeps test_ood whole whatever
    trains, so a corpus with more packages is scored on the same test."""
    eval_min_langs: int = 8
    """Rows with at least this many languages are drawn into dev and test first (aligned sets need many)."""
    cldr_names: bool = True
    """Add CLDR territory, language, script, currency, month and day names (parallel by key) to train."""
    mono_words: int = 5000
    """Most frequent wordfreq words per language appended to mono/<lang>.txt (0 = none)."""
    seed: int = 0
    """Seed of the split."""
    workers: int = 2
    """Processes that read packages (the corpus is the same for any number)."""
    overwrite: bool = False
    """Rebuild even when the outputs exist."""


def reserved(system_dir: Path) -> tuple[set[str], set[str]]:
    """Domains and cleaned, casefolded English messages of the system's catalogs (unreadable ones are passed over)."""
    domains: set[str] = set()
    ids: set[str] = set()
    for domain, _, path in src.catalogs(system_dir):
        domains.add(domain)
        try:
            ids.update(src.read_mo(path))
        except (OSError, ValueError):
            continue
    return domains, {c.casefold() for c in map(src.clean_message, ids) if c}


def _catalog_messages(found: list[tuple[str, str, Path]], system: tuple[set[str], set[str]], system_dir: Path,
                      report: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(domain, lang, msgid, msgstr) of a package's catalogs, the best-ranked locale of a language first."""
    best: dict[tuple[str, str], list[tuple[int, str, Path]]] = {}
    for domain, loc, path in found:
        mapped = src.locale_to_lang(loc)
        if domain in system[0]:
            report["skipped"].append(f"{path}: domain {domain!r} is in {system_dir} (reserved)")
        elif mapped is None or mapped[0] == PIVOT:
            report["skipped"].append(f"{path}: locale {loc!r} has no suite language code" if mapped is None
                                     else f"{path}: English variant")
        else:
            best.setdefault((domain, mapped[0]), []).append((mapped[1], loc, path))
    for (domain, lang), cands in sorted(best.items()):
        for _, _, path in sorted(cands):  # best-ranked locale first; others only fill its gaps
            try:
                catalog = src.read_mo(path)
            except (OSError, ValueError) as e:
                log.warning("%s", e)
                report["errors"].append(str(e))
                continue
            report["catalogs"] += 1
            libreoffice = src.LIBREOFFICE_ROOT in path.as_posix()
            for msgid, msgstr in catalog.items():
                if libreoffice:
                    msgid, msgstr = src.libreoffice_message(msgid) or "", src.libreoffice_message(msgstr) or ""
                yield domain, lang, msgid, msgstr


def _help_messages(tree: Path, english: Path | None, report: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(page#id, lang, English, translation) of a package's LibreOffice help pages (English from ``english``)."""
    for loc, folder in helpdocs.help_locales(tree):
        mapped = src.locale_to_lang(loc)
        if mapped is not None and mapped[0] == PIVOT:
            continue  # the English pages themselves
        if mapped is None or english is None:
            why = f"locale {loc!r} has no suite language code" if mapped is None else "no English pages to pair with"
            report["skipped"].append(f"{folder}: {why}")
            continue
        report["catalogs"] += 1
        for key, eng, text in helpdocs.help_pairs(folder, english / helpdocs.HELP_ROOT / "en-US"):
            yield key, mapped[0], eng, text


def read_package(tree: Path, name: str, cfg: RealTextCorpusConfig, system: tuple[set[str], set[str]],
                 report: dict[str, Any], english_help: Path | None = None) -> Rows:
    """Aligned rows of a package's catalogs and help pages; skipped and unreadable ones go into ``report``."""
    found = src.package_catalogs(tree)
    if not found and not helpdocs.help_locales(tree):
        report["skipped"].append(f"{name}: no gettext catalogs under {' or '.join(src.CATALOG_ROOTS)}, "
                                 f"and no help pages under {helpdocs.HELP_ROOT}")
    system_dir = Path(cfg.system_locale_dir)
    if any((system_dir / loc / "LC_MESSAGES" / p.name).exists() for _, loc, p in found):
        report["skipped"].append(f"{name}: its catalogs are installed under {system_dir} (reserved)")
        return {}
    rows: Rows = {}
    messages = chain(_catalog_messages(found, system, system_dir, report), _help_messages(tree, english_help, report))
    for domain, lang, msgid, msgstr in messages:
        pair = src.clean_pair(msgid, msgstr, lang, cfg.min_words, cfg.max_words)
        if pair is None:
            continue
        if pair[0].casefold() in system[1]:
            report["reserved_messages"] += 1  # the system's own English message: reserved test text
            continue
        row = rows.setdefault(pair[0].casefold(), {
            "meaning": {"source": name, "domain": domain, "msgid": msgid}, "texts": {PIVOT: pair[0]}})
        row["texts"].setdefault(lang, pair[1])
    return rows


def _unpacked(name: str, base: Path, report: dict[str, Any]) -> Path:
    """The package's unpacked tree, fetched and unpacked when it is not there (RuntimeError when that fails)."""
    tree = base / "unpacked" / name
    if not tree.is_dir():
        deb = src.download(name, base / "debs")
        report["deb"] = deb.name
        src.unpack(deb, tree)
    return tree


def _read_one(name: str, cfg: RealTextCorpusConfig, system: tuple[set[str], set[str]]) -> tuple[dict[str, Any], Rows]:
    """The report and rows of one package, fetched and unpacked as needed."""
    report: dict[str, Any] = {"source": name, "kind": "debian package", "catalogs": 0, "skipped": [], "errors": [],
                              "reserved_messages": 0}
    if src.installed(name):
        report["skipped"].append(f"{name}: installed on this machine (reserved)")
        return report, {}
    base = Path(cfg.src_dir)
    try:
        tree = _unpacked(name, base, report)
        english = None
        if helpdocs.help_locales(tree) and not src.installed(helpdocs.ENGLISH_HELP):
            english = _unpacked(helpdocs.ENGLISH_HELP, base, {})
    except RuntimeError as e:
        log.warning("%s", e)
        report["errors"].append(str(e))
        return report, {}
    report["licence"] = src.licence(tree, name)
    got = read_package(tree, name, cfg, system, report, english)
    report["rows"] = len(got)
    return report, got


def read_packages(names: list[str], cfg: RealTextCorpusConfig, system: tuple[set[str], set[str]],
                  provenance: list[dict[str, Any]]) -> Rows:
    """Rows of several packages, read by ``cfg.workers`` processes (the first package to have a message keeps it)."""
    base = Path(cfg.src_dir)
    src.prefetch([n for n in names if not (base / "unpacked" / n).is_dir() and not src.installed(n)], base / "debs")
    if any(n.startswith("libreoffice-help-") for n in names) and not src.installed(helpdocs.ENGLISH_HELP):
        try:
            _unpacked(helpdocs.ENGLISH_HELP, base, {})  # once, before the workers that pair with it
        except RuntimeError as e:
            log.warning("%s", e)  # each help package then reports the failure itself
    read = partial(_read_one, cfg=cfg, system=system)
    rows: Rows = {}
    with ProcessPoolExecutor(cfg.workers) if cfg.workers > 1 else nullcontext() as pool:
        for report, got in (pool.map(read, names) if pool else map(read, names)):
            provenance.append(report)
            for key, row in got.items():
                old = rows.setdefault(key, row)
                for lang, text in row["texts"].items():
                    old["texts"].setdefault(lang, text)
    return rows


def split_rows(train_rows: Rows, heldout: Rows, extra_train: Rows, cfg: RealTextCorpusConfig) -> dict[str, list]:
    """Rows per split: held-out rows only in test_ood, and no sentence of any language in two places."""
    rng = random.Random(f"{cfg.seed}:text_real")

    def eval_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rng.shuffle(rows)
        return sorted(rows, key=lambda r: len(r["texts"]) < cfg.eval_min_langs)

    if cfg.heldout_first:
        train_rows = {k: r for k, r in train_rows.items() if k not in heldout}
        extra_train = {k: r for k, r in extra_train.items() if k not in heldout}
    ood = eval_first([r for k, r in heldout.items() if k not in train_rows and k not in extra_train])
    ind = eval_first(list(train_rows.values()))
    raw = {"test_ood": ood[: cfg.test_ood or None], "test": ind[: cfg.test],
           "dev": ind[cfg.test: cfg.test + cfg.dev], "train": ind[cfg.test + cfg.dev:] + list(extra_train.values())}
    seen: dict[str, set[str]] = {}
    ood_texts: set[str] = set()  # heldout_first: a held-out sentence is in no other split in any language either
    out: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        kept = []
        for row in raw[split]:
            texts = {lang: t for lang, t in row["texts"].items()
                     if t.casefold() not in seen.setdefault(lang, set()) and t.casefold() not in ood_texts}
            if PIVOT not in texts or len(texts) < 2:
                continue
            for lang, t in texts.items():
                seen[lang].add(t.casefold())
            kept.append({"meaning": row["meaning"], "texts": texts})
        out[split] = kept
        if split == "test_ood" and cfg.heldout_first:  # e.g. Galician OOD text that is also a Spanish translation
            ood_texts = {t.casefold() for row in kept for t in row["texts"].values()}
    return out


def choose_langs(splits: dict[str, list], cfg: RealTextCorpusConfig) -> list[str]:
    """The languages kept: ``cfg.langs``, or every one with enough training rows."""
    counts: dict[str, int] = {}
    for row in splits["train"]:
        for lang in row["texts"]:
            counts[lang] = counts.get(lang, 0) + 1
    langs = cfg.langs or [lang for lang, n in counts.items() if n >= cfg.min_lang_rows]
    return [PIVOT, *sorted(set(langs) - {PIVOT})]


def config_record(cfg: RealTextCorpusConfig) -> dict[str, Any]:
    """The config as stats.json records it: heldout_first only when set, so corpora built before it still match, and
    never workers (the output does not depend on it)."""
    record = asdict(cfg)
    del record["workers"]
    if not record["heldout_first"]:
        del record["heldout_first"]
    return record


@CORPUS_BUILDERS.register("text_real")
def build_real_text_corpus(cfg: RealTextCorpusConfig) -> dict[str, Any]:
    """Write the corpus (skipped when it exists with the same config) and return its statistics."""
    root = Path(cfg.out_dir)
    stats_path = root / "stats.json"
    existing = existing_corpus(stats_path, config_record(cfg), cfg.overwrite)
    if existing is not None:
        return existing
    system = reserved(Path(cfg.system_locale_dir))
    provenance: list[dict[str, Any]] = []
    in_domain = read_packages(cfg.packages, cfg, system, provenance)
    heldout = read_packages(cfg.heldout_packages, cfg, system, provenance)
    for report in provenance:
        report["split"] = "test_ood" if report["source"] in cfg.heldout_packages else "train/dev/test"
    found = {lang for row in in_domain.values() for lang in row["texts"]}
    extra = cldr_rows(sorted(found | set(cfg.langs)), provenance) if cfg.cldr_names else {}
    if cfg.mono_words:
        provenance.append({"source": "wordfreq", "kind": "word frequency lists", "split": "mono",
                           "licence": "CC-BY-SA-4.0 (wordfreq data), Apache-2.0 (code)", "skipped": [], "errors": []})
    splits = split_rows(in_domain, heldout, extra, cfg)
    langs = choose_langs(splits, cfg)
    stats: dict[str, Any] = {"config": config_record(cfg), "langs": langs, "sources": provenance, "splits": {},
                             "mono": {}}
    for split, rows in splits.items():
        rows = [{"meaning": r["meaning"], "texts": {k: r["texts"][k] for k in langs if k in r["texts"]}} for r in rows]
        rows = [r for r in rows if len(r["texts"]) >= 2]
        splits[split] = rows
        write_jsonl(root / "parallel" / f"{split}.jsonl", (
            {"id": f"{split}-{i:06d}", **r} for i, r in enumerate(rows)))
        per_lang = {lang: sum(lang in r["texts"] for r in rows) for lang in langs}
        for lang in langs[1:]:
            _write_lines(root / "parallel" / f"{split}.{PIVOT}-{lang}.tsv",
                         [f"{r['texts'][PIVOT]}\t{r['texts'][lang]}" for r in rows if lang in r["texts"]])
        stats["splits"][split] = {"rows": len(rows), "langs": per_lang}
    for lang in langs:
        lines = [r["texts"][lang] for r in splits["train"] if lang in r["texts"]]
        lines = list(dict.fromkeys(lines + mono_words(lang, cfg.mono_words)))
        _write_lines(root / "mono" / f"{lang}.txt", lines)
        stats["mono"][lang] = len(lines)
    with atomic_open(stats_path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats

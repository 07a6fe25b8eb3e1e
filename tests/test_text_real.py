"""Real text corpus from gettext catalogs: .mo reading, cleaning, codes, reserved system text, splits, entry point.

Every package here is a fake unpacked tree in tmp_path with .mo files written by ``write_mo``; nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from datamodules.corpus.text_real import RealTextCorpusConfig, build_real_text_corpus
from datamodules.corpus.text_real_sources import clean_message, clean_pair, libreoffice_message, locale_to_lang, read_mo
from tests.helpers import compose_cfg, load_script
from text.xsim import pivot_figures

WORDS = ["apple", "banana", "cherry", "delta", "echo", "forest", "garden", "harbor", "island", "jungle", "kettle",
         "lemon", "meadow", "north", "ocean", "pepper", "quartz", "river", "summit", "tiger", "umbrella", "valley",
         "willow", "yellow", "zebra", "anchor", "basket", "candle", "desert", "ember"]
CYR = str.maketrans("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопярстуввхыз")


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A little-endian GNU .mo catalog (with a UTF-8 header), as msgfmt writes it."""
    entries = sorted({"": "Content-Type: text/plain; charset=UTF-8\n", **messages}.items())
    ids = [k.encode() for k, _ in entries]
    strs = [v.encode() for _, v in entries]
    n = len(entries)
    start = 28 + 16 * n
    blob, table_o, table_t = b"", [], []
    for s in ids:
        table_o.append((len(s), start + len(blob)))
        blob += s + b"\0"
    for s in strs:
        table_t.append((len(s), start + len(blob)))
        blob += s + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    body = b"".join(struct.pack("<2I", *e) for e in table_o + table_t)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + body + blob)


def translate(eng: str, locale: str) -> str:
    """A made-up but script-correct 'translation' that differs per language."""
    if locale.startswith("ru"):
        return "Перевод " + eng.lower().translate(CYR)
    if locale.startswith("zh"):
        return "".join(chr(0x4E00 + (ord(c) * 7 + i) % 2000) for i, c in enumerate(eng) if c.isalpha())
    return f"{locale.split('@')[0]} {eng.lower()} übersetzt"


def package(root: Path, name: str, domain: str, msgids: list[str], locales: list[str]) -> Path:
    tree = root / "unpacked" / name
    for loc in locales:
        write_mo(tree / "usr/share/locale" / loc / "LC_MESSAGES" / f"{domain}.mo",
                 {m: translate(m, loc) for m in msgids})
    doc = tree / "usr/share/doc" / name / "copyright"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                   "Files: *\nLicense: GPL-2+\n\nFiles: po/*\nLicense: LGPL-2.1+\n", encoding="utf-8")
    return tree


def sentences(prefix: str, n: int) -> list[str]:
    return [f"{prefix} the {WORDS[i % len(WORDS)]} {WORDS[(i // len(WORDS)) % len(WORDS)]} now" for i in range(n)]


@pytest.fixture()
def fake(tmp_path: Path) -> RealTextCorpusConfig:
    """Two training packages, one held-out, one of a reserved domain, one whose catalogs are 'installed'."""
    src, system = tmp_path / "src", tmp_path / "system_locale"
    locales = ["de", "fr", "ru", "zh_CN", "pt", "pt_BR", "sr@latin"]
    package(src, "fake-alpha", "alpha", [*sentences("Open", 60), "_Save the file", "%s not found here", "Ok"],
            locales)
    package(src, "fake-beta", "beta", [*sentences("Close", 40), "Open the apple apple now"], ["de", "ru", "zh_CN"])
    package(src, "fake-held", "held", [*sentences("Print", 30), "Close the apple apple now"], ["de", "fr", "ru"])
    package(src, "fake-reserved", "gamma", sentences("Delete", 20), ["de", "fr"])
    package(src, "fake-installed", "delta", sentences("Rename", 20), ["fr"])
    # Held-out German that repeats training German: a sentence may live in one split only.
    write_mo(src / "unpacked/fake-held/usr/share/locale/de/LC_MESSAGES/held.mo",
             {p: translate(o, "de") for p, o in zip(sentences("Print", 30), sentences("Open", 60)[30:])})
    write_mo(system / "it/LC_MESSAGES/gamma.mo", {"Something else entirely here": "Qualcosa di diverso"})
    write_mo(system / "fr/LC_MESSAGES/delta.mo", {"Other text for delta": "Autre texte"})
    write_mo(system / "es/LC_MESSAGES/sysdom.mo", {"Open the cherry apple now": "Abre la cereza"})  # reserved msgid
    write_mo(src / "unpacked/fake-alpha/usr/share/locale/it/LC_MESSAGES/alpha.mo", {})
    (src / "unpacked/fake-alpha/usr/share/locale/it/LC_MESSAGES/alpha.mo").write_bytes(b"\x00garbage" * 3)
    return RealTextCorpusConfig(out_dir=str(tmp_path / "out"), src_dir=str(src), system_locale_dir=str(system),
                                packages=["fake-alpha", "fake-beta", "fake-reserved", "fake-installed"],
                                heldout_packages=["fake-held"], min_lang_rows=5, dev=5, test=10, eval_min_langs=3,
                                cldr_names=False, mono_words=0)


def _rows(out: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out / "parallel" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_mo_roundtrip_and_corrupt_file_named(tmp_path: Path) -> None:
    write_mo(tmp_path / "a.mo", {"Hello there friend": "Hallo Freund", "ctx\x04Open it now": "Jetzt öffnen"})
    assert read_mo(tmp_path / "a.mo") == {"Hello there friend": "Hallo Freund", "Open it now": "Jetzt öffnen"}
    (tmp_path / "bad.mo").write_bytes(b"\xde\x12\x04\x95" + b"\xff" * 30)
    with pytest.raises(ValueError, match=r"bad\.mo"):
        read_mo(tmp_path / "bad.mo")


def test_language_codes() -> None:
    assert locale_to_lang("de") == ("deu_Latn", 0)
    assert locale_to_lang("pt_BR") == ("por_Latn", 1) and locale_to_lang("pt") == ("por_Latn", 0)
    assert locale_to_lang("sr")[0] == "srp_Cyrl" and locale_to_lang("sr@latin")[0] == "srp_Latn"  # type: ignore[index]
    assert locale_to_lang("zh_CN")[0] == "cmn_Hans" and locale_to_lang("zh_TW")[0] == "cmn_Hant"  # type: ignore[index]
    assert locale_to_lang("ar")[0] == "arb_Arab" and locale_to_lang("sw")[0] == "swh_Latn"  # type: ignore[index]
    assert locale_to_lang("ca@valencia") == ("cat_Latn", 3)
    assert locale_to_lang("C") is None and locale_to_lang("xx") is None


def test_cleaning() -> None:
    assert clean_message("_Open the  selected\nfile") == "Open the selected file"
    assert clean_message("Save &As a copy") == "Save As a copy"
    assert clean_message("<b>Bold</b> text &amp; more") == "Bold text & more"
    assert clean_message("打开文件(_O)") == "打开文件"
    for bad in ("%s is missing", "%(name)s here", "Value {0} done", "See https://x.org now", "Run --help first",
                "a_b and c_d", "/usr/bin/thing", "12:34 -- 56"):
        assert clean_message(bad) is None, bad
    assert clean_pair("Ok now", "Gut jetzt", "deu_Latn", 3, 40) is None  # too short
    assert clean_pair("Open the file now", "Open the file now", "deu_Latn", 3, 40) is None  # untranslated
    assert clean_pair("Open the file now", "Open the file now", "rus_Cyrl", 3, 40) is None
    assert clean_pair("Open the file now", "Öffne die Datei jetzt", "deu_Latn", 3, 40) == (
        "Open the file now", "Öffne die Datei jetzt")


def test_build_aligns_skips_reserved_and_splits_cleanly(fake: RealTextCorpusConfig) -> None:
    stats = build_real_text_corpus(fake)
    out = Path(fake.out_dir)
    splits = {s: _rows(out, s) for s in ("train", "dev", "test", "test_ood")}
    everything = [r for rows in splits.values() for r in rows]
    # One row per msgid with every language that translates it; pt and pt_BR merge into por_Latn (bare pt first).
    row = next(r for r in everything if r["texts"]["eng_Latn"] == "Open the banana apple now")
    assert set(row["texts"]) == {"eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "cmn_Hans", "por_Latn", "srp_Latn"}
    assert row["texts"]["por_Latn"].startswith("pt ") and row["texts"]["srp_Latn"].startswith("sr ")
    assert row["meaning"] == {"source": "fake-alpha", "domain": "alpha", "msgid": "Open the banana apple now"}
    english = {r["texts"]["eng_Latn"] for r in everything}
    assert "Save the file" in english and not any("%" in e or e == "Ok" for e in english)
    # Reserved: the domain in the system dir, the package whose catalog is installed, the system's own msgid.
    assert not any(e.startswith(("Delete", "Rename")) for e in english)
    assert "Open the cherry apple now" not in english
    skipped = " ".join(s for src in stats["sources"] for s in src["skipped"])
    assert "'gamma'" in skipped and "fake-installed: its catalogs are installed" in skipped
    errors = [e for src in stats["sources"] for e in src["errors"]]
    assert len(errors) == 1 and "it/LC_MESSAGES/alpha.mo" in errors[0]
    assert stats["sources"][0]["licence"] == "GPL-2+, LGPL-2.1+"
    assert stats["sources"][0]["reserved_messages"] == 7  # one system msgid, in each of the 7 catalogs
    # Held out: test_ood only from fake-held, never anywhere else; shared messages stay in training.
    assert {r["meaning"]["source"] for r in splits["test_ood"]} == {"fake-held"}
    assert all(r["meaning"]["source"] != "fake-held" for s in ("train", "dev", "test") for r in splits[s])
    assert "Close the apple apple now" not in {r["texts"]["eng_Latn"] for r in splits["test_ood"]}
    assert len(splits["test"]) == 10 and len(splits["dev"]) == 5 and len(splits["test_ood"]) == 30
    # No sentence of any language in train that is in a test or dev split, nor twice anywhere.
    pairs = [(k, v.casefold()) for r in everything for k, v in r["texts"].items()]
    assert len(pairs) == len(set(pairs))
    assert sum("deu_Latn" in r["texts"] for r in splits["test_ood"]) == 30
    train = {(k, v.casefold()) for r in splits["train"] for k, v in r["texts"].items()}
    for s in ("dev", "test", "test_ood"):
        assert not train & {(k, v.casefold()) for r in splits[s] for k, v in r["texts"].items()}, s
    assert stats["splits"]["train"]["rows"] == len(splits["train"])
    assert stats["splits"]["test"]["langs"]["deu_Latn"] == sum("deu_Latn" in r["texts"] for r in splits["test"])
    tsv = (out / "parallel" / "train.eng_Latn-rus_Cyrl.tsv").read_text(encoding="utf-8").splitlines()
    assert len(tsv) == stats["splits"]["train"]["langs"]["rus_Cyrl"] and "\t" in tsv[0]
    mono = (out / "mono" / "deu_Latn.txt").read_text(encoding="utf-8").splitlines()
    test_de = {r["texts"]["deu_Latn"] for r in splits["test"] if "deu_Latn" in r["texts"]}
    assert mono and not test_de & set(mono)


def test_deterministic_and_reuses_output(fake: RealTextCorpusConfig) -> None:
    first = build_real_text_corpus(fake)
    again = build_real_text_corpus(fake)
    assert again["splits"] == first["splits"]
    serial = RealTextCorpusConfig(**{**vars(fake), "workers": 1, "out_dir": f"{fake.out_dir}_serial"})
    assert build_real_text_corpus(serial)["splits"] == first["splits"]
    for split in ("train", "test_ood"):
        assert _rows(Path(serial.out_dir), split) == _rows(Path(fake.out_dir), split)
    fake.seed = 1
    with pytest.raises(FileExistsError, match="overwrite=true"):
        build_real_text_corpus(fake)


def test_make_corpus_runs_with_corpus_text_real(fake: RealTextCorpusConfig, tmp_path: Path) -> None:
    cfg = compose_cfg("make_corpus", [
        "corpus=text_real", f"corpus.out_dir={tmp_path}/cli", f"corpus.src_dir={fake.src_dir}",
        f"corpus.system_locale_dir={fake.system_locale_dir}", "corpus.packages=[fake-alpha]",
        "corpus.heldout_packages=[fake-held]", "corpus.dev=3", "corpus.test=3", "corpus.min_lang_rows=3",
        "corpus.mono_words=20"], tmp_path)
    load_script("make_corpus").main.__wrapped__(cfg)
    stats = json.loads((tmp_path / "cli" / "stats.json").read_text(encoding="utf-8"))
    assert {"fake-alpha", "fake-held", "cldr", "wordfreq"} <= {s["source"] for s in stats["sources"]}
    train = _rows(tmp_path / "cli", "train")
    assert any(r["meaning"]["source"] == "cldr" and r["texts"].get("deu_Latn") == "Deutschland" for r in train)
    assert len((tmp_path / "cli" / "mono" / "deu_Latn.txt").read_text(encoding="utf-8").splitlines()) > 60


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg (Debian)")
def test_installed_package_is_never_read(fake: RealTextCorpusConfig) -> None:
    package(Path(fake.src_dir), "dpkg", "not-in-system", sentences("Open", 20), ["de", "fr"])  # dpkg is installed
    fake.packages, fake.heldout_packages = ["dpkg", "fake-alpha"], []
    stats = build_real_text_corpus(fake)
    dpkg = next(s for s in stats["sources"] if s["source"] == "dpkg")
    assert dpkg["skipped"] == ["dpkg: installed on this machine (reserved)"] and "rows" not in dpkg


def test_heldout_messages_never_train(fake: RealTextCorpusConfig) -> None:
    """Neither policy lets a held-out sentence train; heldout_first keeps test_ood whole whatever else trains."""
    # A held-out Spanish text that is word for word a training German one (related languages share strings).
    clash = translate(sentences("Open", 60)[0], "de")
    write_mo(Path(fake.src_dir) / "unpacked/fake-held/usr/share/locale/es/LC_MESSAGES/held.mo",
             {sentences("Print", 30)[0]: clash})
    ood_by_policy, german = {}, {}
    for first in (False, True):
        fake.heldout_first, fake.out_dir = first, f"{fake.out_dir}_{first}"
        stats = build_real_text_corpus(fake)
        out = Path(fake.out_dir)
        splits = {s: _rows(out, s) for s in ("train", "dev", "test", "test_ood")}
        ood = {(k, v.casefold()) for r in splits["test_ood"] for k, v in r["texts"].items()}
        for split in ("train", "dev", "test"):
            assert not ood & {(k, v.casefold()) for r in splits[split] for k, v in r["texts"].items()}, (first, split)
        mono = (out / "mono" / "eng_Latn.txt").read_text(encoding="utf-8").splitlines()
        assert not {t for k, t in ood if k == "eng_Latn"} & {m.casefold() for m in mono}
        assert ("heldout_first" in stats["config"]) == first  # absent at its default: older corpora still match
        ood_by_policy[first] = {r["texts"]["eng_Latn"] for r in splits["test_ood"]}
        german[first] = {r["texts"].get("deu_Latn") for s in ("train", "dev", "test") for r in splits[s]}
    # "Close the apple apple now" is in fake-beta (training) and fake-held: it trains, or it is tested, never both.
    assert "Close the apple apple now" not in ood_by_policy[False]
    assert ood_by_policy[True] == ood_by_policy[False] | {"Close the apple apple now"}
    assert clash in german[False] and clash not in german[True]  # strict: in no language


@pytest.mark.parametrize("preset", ["text_real", "text_real_large"])
def test_presets_never_train_on_heldout_sources(preset: str, tmp_path: Path) -> None:
    """No training package is a held-out one or built from the same sources (gnucash, gparted, gnome-disk-utility)."""
    cfg = compose_cfg("make_corpus", [f"corpus={preset}"], tmp_path).corpus
    held = set(cfg.heldout_packages)
    assert held == {"gnucash-common", "gparted-common", "gnome-disk-utility"}
    assert len(set(cfg.packages)) == len(cfg.packages) and not held & set(cfg.packages)
    assert not [p for p in cfg.packages if p.startswith(("gnucash", "gparted", "gnome-disk"))]
    assert cfg.system_locale_dir == "/usr/share/locale"
    if preset == "text_real_large":  # the same out-of-domain test as text_real's, in a folder of its own
        assert cfg.heldout_first and cfg.out_dir.endswith("text_real_large")
        assert len(cfg.packages) >= 5 * 20 and set(compose_cfg("make_corpus", ["corpus=text_real"], tmp_path)
                                                    .corpus.packages) <= set(cfg.packages)


def test_curve_points_use_the_chosen_corpus_for_fixed_steps(tmp_path: Path) -> None:
    """benchmarks/text_real_curve.py: a point is the bag encoder on N rows of the chosen corpus, for exactly N steps."""
    from benchmarks import text_real_curve as curve

    corpus = tmp_path / "text_real_large"
    cfg = curve.point_config("4000", 37, tmp_path / "bench", corpus, [])
    assert cfg.trainer.max_steps == 37 and cfg.trainer.max_time is None and cfg.callbacks.early_stopping is None
    assert cfg.model.encoder._target_.endswith("sentence_encoder_bag")
    assert cfg.data.train_manifest.real == str(corpus / "parallel/train.jsonl")
    assert cfg.data.mono_dir.real == str(corpus / "mono")
    assert cfg.data.val_manifest == str(corpus / "parallel/dev.jsonl")
    assert cfg.data.train_rows == {"real": 4000} and cfg.data.train_weights is None
    assert "dict" not in cfg.data.train_manifest  # the curve is over real rows beside the generated ones
    assert curve.point_config("0", 5, tmp_path, corpus, []).data.train_weights == {"real": 0, "generated": 1}
    # Inside the script's own @hydra.main (another config dir) too, which is put back afterwards.
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(str(Path(curve.ROOT) / "configs/benchmarks"), version_base="1.3"):
        assert curve.point_config("all", 5, tmp_path, corpus, []).data.train_weights is None
        assert GlobalHydra.instance().is_initialized()
    matrix = {"eng_Latn": {"deu_Latn": 0.1}, "deu_Latn": {"eng_Latn": 0.3, "fra_Latn": 0.2},
              "fra_Latn": {"deu_Latn": 0.4}}
    assert curve.pivot_errors(matrix)["deu_Latn"] == pytest.approx(0.2)
    # The curve's X<->Y mean is evaluate_encoder's mean_xsim_others: over the non-English pairs, absent without one.
    assert pivot_figures(matrix, ["eng_Latn", "deu_Latn", "fra_Latn"])["mean_xsim_others"] == pytest.approx(0.3)
    assert "mean_xsim_others" not in pivot_figures(matrix, ["eng_Latn", "deu_Latn"])


def test_libreoffice_markup_is_cleaned() -> None:
    """LibreOffice marks accelerators with ~ and fills holes with $(ARG1) or %1: the first is cut, the rest refused."""
    assert libreoffice_message("~Insert the chart now") == "Insert the chart now"
    assert libreoffice_message("表格(~T)") == "表格"
    for bad in ("Cannot open $(ARG1) now", "Page %1 of %2 here"):
        assert libreoffice_message(bad) is None, bad
    assert clean_message('Template file "~a" can not be read') == 'Template file "~a" can not be read'  # not LO


def _help_page(path: Path, paragraphs: dict[str, str]) -> None:
    body = "".join(f'<p id="{k}" class="paragraph">{v}</p>' for k, v in paragraphs.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><body><h1 id='hd_id1'>Heading</h1><div>{body}</div>"
                    "<script>alert('never run')</script></body></html>", encoding="utf-8")


def test_libreoffice_interface_and_help_pages_align(fake: RealTextCorpusConfig) -> None:
    """The interface's catalogs under program/resource, and help paragraphs paired with English by page and id."""
    root = Path(fake.src_dir) / "unpacked"
    write_mo(root / "libreoffice-l10n-de/usr/lib/libreoffice/program/resource/de/LC_MESSAGES/sc.mo",
             {"SC_ID\x04~Sort the cell range now": "Zellbereich jetzt ~sortieren", "Sheet %1 of the range": "Blatt %1"})
    english = {f"par_id{i}": f"Choose the {w} <span class='emph'>cell</span> style here" for i, w in enumerate(WORDS)}
    german = {k: f"Wählen Sie hier die {v.split()[2]}-Zellvorlage" for k, v in english.items()}
    del german["par_id3"]  # a paragraph the translation lacks
    german["par_id999"] = "Ein Absatz ohne englisches Gegenstück hier"
    _help_page(root / "libreoffice-help-en-us/usr/share/libreoffice/help/en-US/text/scalc/01/a.html", english)
    _help_page(root / "libreoffice-help-de/usr/share/libreoffice/help/de/text/scalc/01/a.html", german)
    _help_page(root / "libreoffice-help-pt-br/usr/share/libreoffice/help/pt-BR/text/scalc/01/a.html",
               {k: f"Escolha o estilo {v.split()[2]} aqui" for k, v in english.items()})
    fake.packages = ["libreoffice-l10n-de", "libreoffice-help-de", "libreoffice-help-pt-br"]
    fake.heldout_packages, fake.dev, fake.test = [], 0, 0
    stats = build_real_text_corpus(fake)
    rows = {r["texts"]["eng_Latn"]: r for r in _rows(Path(fake.out_dir), "train")}
    assert rows["Sort the cell range now"]["texts"]["deu_Latn"] == "Zellbereich jetzt sortieren"
    assert not any("Sheet" in e for e in rows)
    row = rows["Choose the banana cell style here"]
    assert row["texts"] == {"eng_Latn": "Choose the banana cell style here", "por_Latn": "Escolha o estilo banana aqui",
                            "deu_Latn": "Wählen Sie hier die banana-Zellvorlage"}
    assert row["meaning"] == {"source": "libreoffice-help-de", "domain": "text/scalc/01/a.html#par_id1",
                              "msgid": "Choose the banana cell style here"}
    assert "deu_Latn" not in rows["Choose the delta cell style here"]["texts"]
    assert not any("ohne" in t for r in rows.values() for t in r["texts"].values())
    assert [s["catalogs"] for s in stats["sources"][:3]] == [1, 1, 1]


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_unpack_keeps_catalogs_help_and_copyright_only(tmp_path: Path) -> None:
    """A .deb is unpacked to what the corpus reads: catalogs, LibreOffice's resources and help, copyright files."""
    import subprocess

    from datamodules.corpus.text_real_sources import unpack

    root = tmp_path / "pkg"
    keep = ["usr/share/locale/de/LC_MESSAGES/a.mo", "usr/share/doc/pkg/copyright",
            "usr/lib/libreoffice/program/resource/de/LC_MESSAGES/sc.mo", "usr/share/libreoffice/help/de/text/a.html"]
    for rel in [*keep, "usr/bin/tool", "usr/share/pkg/big.dat"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel, encoding="utf-8")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text("Package: pkg\nVersion: 1\nArchitecture: all\nMaintainer: x <x@y.z>\n"
                                         "Description: test\n", encoding="utf-8")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(tmp_path / "pkg.deb")], check=True,
                   capture_output=True)
    unpack(tmp_path / "pkg.deb", tmp_path / "tree")
    found = sorted(str(p.relative_to(tmp_path / "tree")) for p in (tmp_path / "tree").rglob("*") if p.is_file())
    assert found == sorted(keep)
    (tmp_path / "bad.deb").write_bytes(b"not a deb")
    with pytest.raises(RuntimeError, match=r"bad\.deb"):
        unpack(tmp_path / "bad.deb", tmp_path / "tree2")


def test_reserved_catalogs_are_read_only_by_their_test(tmp_path: Path) -> None:
    """benchmarks/text_reserved_eval.py aligns a system locale tree's catalogs, cleaned as the builder cleans them."""
    from benchmarks.text_reserved_eval import reserved_rows

    msgs = [*sentences("Copy", 5), "%s is missing"]
    for loc in ("de", "ru"):
        write_mo(tmp_path / "usr/share/locale" / loc / "LC_MESSAGES/coreutils.mo", {m: translate(m, loc) for m in msgs})
    rows = reserved_rows(tmp_path)
    assert len(rows) == 5 and all(set(r["texts"]) == {"eng_Latn", "deu_Latn", "rus_Cyrl"} for r in rows)

"""Language codes as users write them, resolved against a model's languages (text/langcodes.py), in the API,
the manifest rows of batch transcription and transcribe.py's lang=."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from common.io import read_jsonl_lenient
from common.runner import compose_and_run
from speech.asr.batch import collect_inputs, transcribe_to_file
from speech.asr.config import CTCModelConfig, conformer
from speech.asr.hub import save_pretrained
from speech.asr.infer import Transcriber
from speech.asr.model import CTCModel
from tests.helpers import load_script
from text.char_vocab import CharVocab
from text.langcodes import LanguageError, canonical, resolve

MODEL_LANGS = ["arb_Arab", "cmn_Hans", "cmn_Hant", "deu_Latn", "eng_Latn", "hin_Deva", "srp_Cyrl", "srp_Latn",
               "swh_Latn"]


@pytest.mark.parametrize("code", ["deu_Latn", "de", "deu", "de-DE", "de_DE", "DE", "ger", "deu_latn"])
def test_every_way_of_writing_german_is_the_models_code(code: str) -> None:
    assert resolve(code, MODEL_LANGS) == "deu_Latn"


@pytest.mark.parametrize(("code", "want"), [
    ("hi", "hin_Deva"), ("ar", "arb_Arab"), ("ara", "arb_Arab"), ("arb", "arb_Arab"), ("zh", "cmn_Hans"),
    ("zh-CN", "cmn_Hans"), ("zh-TW", "cmn_Hant"), ("zh_Hant", "cmn_Hant"), ("sw", "swh_Latn"), ("swa", "swh_Latn"),
    ("sr-ME", "srp_Latn"), ("sr_Cyrl", "srp_Cyrl"),
])
def test_script_defaults_and_macrolanguages(code: str, want: str) -> None:
    assert resolve(code, MODEL_LANGS) == want


def test_a_language_in_two_scripts_is_ambiguous_unless_the_model_has_one() -> None:
    with pytest.raises(LanguageError, match=r"'sr' is ambiguous.*srp_Cyrl, srp_Latn"):
        resolve("sr", MODEL_LANGS)
    assert resolve("sr", ["eng_Latn", "srp_Latn"]) == "srp_Latn"
    assert resolve("zh", ["cmn_Hant"]) == "cmn_Hant"  # the only Chinese it has


@pytest.mark.parametrize("code", ["xx", "fr", "fra_Latn", "de_Cyrl", "zh-TW"])
def test_unknown_codes_name_themselves_and_list_the_models_languages(code: str) -> None:
    known = [k for k in MODEL_LANGS if k != "cmn_Hant"]
    with pytest.raises(LanguageError) as e:
        resolve(code, known)
    assert repr(code) in str(e.value) and ", ".join(known) in str(e.value)


def test_without_a_language_list_codes_become_canonical() -> None:
    assert [canonical(c) for c in ("de", "ar", "zh-TW", "sw", "fa", "hi")] == [
        "deu_Latn", "arb_Arab", "cmn_Hant", "swh_Latn", "pes_Arab", "hin_Deva"]
    assert resolve("de", None) == resolve("de", []) == "deu_Latn"
    assert canonical("abc_Latn") == "abc_Latn"  # a rare language with its script written out
    for bad, why in (("xx", "unknown language code"), ("sr", "more than one script"), ("d", "not a language"),
                     ("de-DE-1996x", "not a language")):
        with pytest.raises(LanguageError, match=why):
            canonical(bad)


# ---------------------------------------------------------------- in transcription


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model that knows German and English alphabets."""
    torch.manual_seed(0)  # an untrained model whose transcripts are not empty
    vocab = CharVocab(list("abcdefghij"), {"deu_Latn": "abcde", "eng_Latn": "fghij"})
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=conformer(d_model=32, num_layers=1, num_heads=2,
                                                                              conv_kernel=5)))
    return save_pretrained(model, vocab, tmp_path_factory.mktemp("model") / "m")


def _manifest(tmp_path: Path, langs: list[str | None]) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i, lang in enumerate(langs):
        sf.write(tmp_path / f"a{i}.wav", (0.1 * rng.standard_normal(8000 + 1000 * i)).astype(np.float32), 16000)
        rows.append({"audio": f"a{i}.wav", **({"lang": lang} if lang else {})})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_api_takes_codes_as_users_write_them(model_dir: Path) -> None:
    t = Transcriber.from_pretrained(model_dir)
    assert t.languages == ["deu_Latn", "eng_Latn"]
    wave = 0.1 * np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    rows = t.transcribe([wave], lang="de-DE", timestamps="word")
    assert rows == t.transcribe([wave], lang="deu_Latn", timestamps="word")
    assert isinstance(rows[0], dict) and rows[0]["text"] and set(rows[0]["text"]) <= set("abcde ")  # German's
    (english,) = t.transcribe([wave], lang="en")
    assert isinstance(english, str) and english and set(english) <= set("fghij ")
    with pytest.raises(LanguageError, match=r"'xx'.*deu_Latn, eng_Latn"):
        t.transcribe([wave], lang="xx")


def test_manifest_rows_resolve_and_unknown_codes_fail_alone(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    report = transcribe_to_file(Transcriber.from_pretrained(model_dir),
                                collect_inputs(_manifest(tmp_path, ["de", "xx", "en-GB", None])), out, progress=False)
    rows = {r["audio"]: r for r in read_jsonl_lenient(out)}
    assert {a: r["lang"] for a, r in rows.items()} == {"a0.wav": "deu_Latn", "a2.wav": "eng_Latn", "a3.wav": None}
    failed = read_jsonl_lenient(tmp_path / "out.jsonl.failed.jsonl")
    assert [f["audio"] for f in failed] == ["a1.wav"] and report.exit_code != 0
    assert "'xx'" in failed[0]["reason"] and "deu_Latn, eng_Latn" in failed[0]["reason"]


def test_cli_lang_is_resolved_and_an_unknown_one_stops_the_run(model_dir: Path, tmp_path: Path) -> None:
    run = load_script("transcribe").run
    manifest = _manifest(tmp_path, [None, "en"])
    out = tmp_path / "cli.jsonl"
    keys = [f"model={model_dir}", f"input={manifest}", f"output={out}", "progress=false", "num_workers=0"]
    assert compose_and_run("transcribe", [*keys, "lang=deu"], run) == 0
    assert [r["lang"] for r in read_jsonl_lenient(out)] == ["deu_Latn", "deu_Latn"]  # the command's lang wins
    with pytest.raises(SystemExit, match=r"lang=fr: .*'fr'.*deu_Latn, eng_Latn"):
        compose_and_run("transcribe", [*keys, "lang=fr", f"output={tmp_path / 'fr.jsonl'}"], run)

"""One command-line style: every command is a Hydra app (key=value, --help, --cfg job, one-line missing-key error),
callable in-process through common.runner.compose_and_run; the registries and the evaluation protocol behind them."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from common.commands import CORPUS_BUILDERS, LANGUAGE_EXTENDERS
from common.runner import BENCHMARK_CONFIGS, COMMAND_CONFIGS, compose, compose_and_run
from tests.helpers import CONFIGS, ROOT, compose_cfg, load_script

COMMANDS = ["build_lid", "build_lm", "build_word_lm", "extend_language", "make_shards", "score"]


def _required(name: str) -> list[str]:
    raw = OmegaConf.load(COMMAND_CONFIGS / f"{name}.yaml")
    return [str(k) for k in raw if k not in ("defaults", "hydra") and OmegaConf.is_missing(raw, k)]


def _given(name: str) -> list[str]:
    return [f"{k}=given_{k}" for k in _required(name)]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Run a script as ``python scripts/<name>.py <args>`` would, in-process (--help and --cfg run no job)."""

    def run(name: str, *args: str) -> None:
        path = str(ROOT / "scripts" / f"{name}.py")
        monkeypatch.setattr(sys, "argv", [path, *args])
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as e:  # --help ends with exit code 0
            assert e.code in (0, None), e.code

    yield run
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_the_usage_and_every_key(name: str, cli: Callable[..., None],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cli(name, "--help")
    out = capsys.readouterr().out
    assert f"python scripts/{name}.py" in out.splitlines()[0]
    keys = [str(k) for k in OmegaConf.load(COMMAND_CONFIGS / f"{name}.yaml") if k not in ("defaults", "hydra")]
    assert all(f"\n{k}:" in out for k in keys), name
    keys_part = out.split("\n", 2)[2]  # after the usage line and the line that explains ???
    assert keys_part.count("???") == len(_required(name)) > 0


@pytest.mark.parametrize("name", COMMANDS)
def test_cfg_job_prints_what_compose_and_run_gets(name: str, cli: Callable[..., None],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cli(name, "--cfg", "job", *_given(name))
    printed = OmegaConf.create(capsys.readouterr().out)
    assert isinstance(printed, DictConfig)
    assert printed == compose(name, _given(name))
    assert all(printed[k] == f"given_{k}" for k in _required(name))
    seen = compose_and_run(name, _given(name), lambda cfg: cfg)
    assert seen == printed and "hydra" not in seen


@pytest.mark.parametrize("name", COMMANDS)
def test_a_missing_required_key_is_one_clear_line(name: str) -> None:
    required = _required(name)
    with pytest.raises(SystemExit) as info:
        compose_and_run(name, _given(name)[1:], lambda cfg: pytest.fail("ran without its required keys"))
    message = str(info.value.code)
    assert "\n" not in message and message.startswith(f"{name}: {required[0]}= required")
    with pytest.raises(SystemExit, match=rf"{name}: .*Could not override 'no_such_key'"):
        compose_and_run(name, [*_given(name), "no_such_key=1"], lambda cfg: None)


def test_the_command_line_leaves_nothing_behind_and_says_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "score.py")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "score: hyp= required (python scripts/score.py --help lists the keys)"
    assert list(tmp_path.iterdir()) == []  # no run folder, .hydra dump or log file


def test_build_lid_defaults_are_the_training_configs() -> None:
    from speech.asr.lid_train import LIDTrainConfig

    cfg = compose("build_lid", ["model=m", "train=t"])
    assert {f.name: cfg[f.name] for f in fields(LIDTrainConfig)} == {
        f.name: getattr(LIDTrainConfig(), f.name) for f in fields(LIDTrainConfig)}


def test_score_writes_its_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hyp = tmp_path / "hyp.jsonl"
    rows = [{"audio": "a.wav", "text": "guten tag", "ref": "Guten Tag!", "lang": "deu_Latn"},
            {"audio": "b.wav", "text": "hallo welt", "ref": "Hallo, Welf", "lang": "deu_Latn"}]
    hyp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = compose_and_run("score", [f"hyp={hyp}"], load_script("score").run)
    assert summary["all"]["cer"] == pytest.approx(1 / 19)  # one wrong letter in 19 reference characters
    assert json.loads((tmp_path / "hyp.scores.json").read_text()) == json.loads(json.dumps(summary))
    compose_and_run("score", [f"hyp={hyp}", f"out={tmp_path / 'other.json'}"], load_script("score").run)
    assert (tmp_path / "other.json").is_file()


def test_score_groups_by_the_reference_language_or_a_manifest_field(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "b.wav").write_bytes(b"")
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps(r) + "\n" for r in [
        {"audio": "a.wav", "text": "guten tag", "lang": "deu_Latn", "voice_quality": "whisper"},
        {"audio": "b.wav", "text": "hola mundo", "lang": "spa_Latn", "voice_quality": "modal"}]), encoding="utf-8")
    hyp = tmp_path / "hyp.jsonl"
    # b.wav was misidentified as German: it still counts against Spanish, the reference's language.
    hyp.write_text("".join(json.dumps(r) + "\n" for r in [
        {"audio": "a.wav", "text": "guten tag", "lang": "deu_Latn"},  # transcribe.py copies the manifest's path
        {"audio": "b.wav", "text": "hola mundi", "lang": "deu_Latn"}]), encoding="utf-8")
    by_lang = compose_and_run("score", [f"hyp={hyp}", f"ref={ref}"], load_script("score").run)
    assert set(by_lang) == {"deu_Latn", "spa_Latn", "all"} and by_lang["spa_Latn"]["cer"] == pytest.approx(1 / 10)
    by_voice = compose_and_run("score", [f"hyp={hyp}", f"ref={ref}", "by=voice_quality"], load_script("score").run)
    assert by_voice["whisper"]["cer"] == 0 and by_voice["modal"]["cer"] == pytest.approx(1 / 10)
    with pytest.raises(SystemExit, match="needs ref="):
        compose_and_run("score", [f"hyp={hyp}", "by=voice_quality"], load_script("score").run)


def test_build_word_lm_writes_an_arpa_file(tmp_path: Path) -> None:
    src = tmp_path / "corpus.txt"
    src.write_text("the cat sat\n\nthe dog sat\n", encoding="utf-8")
    out = compose_and_run("build_word_lm", [f"input={src}", f"output={tmp_path / 'lm.arpa'}", "order=2"],
                          load_script("build_word_lm").run)
    text = out.read_text(encoding="utf-8")
    assert "ngram 1=7" in text and "ngram 2=" in text and "\\3-grams:" not in text  # 4 words, <s>, </s>, <unk>
    with pytest.raises(SystemExit, match=r"missing\.txt: text file not found"):
        compose_and_run("build_word_lm", [f"input={tmp_path / 'missing.txt'}", "output=x.arpa"],
                        load_script("build_word_lm").run)


def test_extend_language_passes_only_the_given_keys_as_strings(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "echo_for_tests"}')
    seen: dict[str, object] = {}
    monkeypatch.setitem(LANGUAGE_EXTENDERS.entries, "echo_for_tests", lambda args: seen.update(args) or "done")
    script = load_script("extend_language")
    result = compose_and_run("extend_language", [f"model={tmp_path}", "lang=tur_Latn", "steps=6", "lr=3e-3",
                                                 "fold_case=false", f"output={tmp_path / 'o'}"], script.run)
    assert result == "done"
    assert seen == {"model": str(tmp_path), "lang": "tur_Latn", "steps": "6", "lr": "0.003", "fold_case": "false",
                    "output": str(tmp_path / "o")}


def test_registries_are_filled_by_the_families(tmp_path: Path) -> None:
    assert {"sentence_encoder", "ctc_conformer", "ctc_wav2vec2", "ctc_adapted"} <= set(LANGUAGE_EXTENDERS.names())
    from datamodules.corpus.speech import build_speech_corpus
    from datamodules.corpus.text import build_text_corpus

    assert CORPUS_BUILDERS.get("speech") is build_speech_corpus and CORPUS_BUILDERS.get("text") is build_text_corpus
    for name in ("speech", "text"):
        assert compose_cfg("make_corpus", [f"corpus={name}"], tmp_path).corpus.builder == name


def test_make_corpus_names_an_unknown_builder(tmp_path: Path) -> None:
    cfg = compose_cfg("make_corpus", ["corpus.builder=poems"], tmp_path)
    known = r"known: (\w+, )*speech, text"
    with pytest.raises(SystemExit, match=r"corpus\.builder: unknown corpus builder 'poems'; " + known):
        load_script("make_corpus").run(cfg)


def test_every_model_config_evaluates_through_its_module(tmp_path: Path) -> None:
    import hydra

    from common.evaluation import Evaluable, evaluate

    for path in sorted((CONFIGS / "model").glob("*.yaml")):
        cfg = compose_cfg("eval", [f"model={path.stem}", "ckpt_path=x.ckpt"], tmp_path)
        assert isinstance(hydra.utils.get_class(cfg.model._target_), Evaluable), path.name
    ssl = compose_cfg("eval", ["experiment=ssl_pretrain", "ckpt_path=x.ckpt"], tmp_path)
    with pytest.raises(SystemExit, match="no evaluation of an SSL checkpoint; fine-tune"):
        evaluate(ssl, "x.ckpt")
    plain = compose_cfg("eval", ["ckpt_path=x.ckpt", "model._target_=torch.nn.Linear"], tmp_path)
    with pytest.raises(SystemExit, match="Linear has no evaluate"):
        evaluate(plain, "x.ckpt")


def test_eval_without_a_checkpoint_is_one_clear_line() -> None:
    with pytest.raises(SystemExit, match=r"^eval: ckpt_path= required \(python scripts/eval\.py --help"):
        compose_and_run("eval", ["experiment=text_encoder"], load_script("eval").evaluate, config_dir=CONFIGS)


def test_extend_language_takes_every_training_run_key() -> None:
    from common.fit import FIT_KEYS

    assert set(FIT_KEYS) <= set(OmegaConf.load(COMMAND_CONFIGS / "extend_language.yaml"))


BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py")
                    if p.stem not in ("__init__", "hf_pipeline_throughput"))  # the latter has its own tests
# (folder, name, config root): every benchmark, and the commands outside the scripts' first batch.
APPS = [("benchmarks", name, BENCHMARK_CONFIGS) for name in BENCHMARKS] + [
    ("scripts", "convert_checkpoint", COMMAND_CONFIGS)]


def _app_required(root: Path, name: str) -> list[str]:
    raw = OmegaConf.load(root / f"{name}.yaml")
    return [str(k) for k in raw if k not in ("defaults", "hydra") and OmegaConf.is_missing(raw, k)]


def _run_file(path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``python <path> <args>`` in-process (--help and --cfg job print and run no job)."""
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as e:
        assert e.code in (0, None), e.code
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize(("folder", "name", "root"), APPS, ids=[f"{f}/{n}" for f, n, _ in APPS])
def test_every_benchmark_answers_help_and_cfg_job(folder: str, name: str, root: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / folder / f"{name}.py"
    _run_file(path, ["--help"], monkeypatch)
    out = capsys.readouterr().out
    assert f"python {folder}/{name}.py" in out.splitlines()[0]
    keys = [str(k) for k in OmegaConf.load(root / f"{name}.yaml") if k not in ("defaults", "hydra")]
    assert keys and all(f"\n{k}:" in out or f"\n'{k}':" in out for k in keys), name  # YAML quotes n (a bool)
    given = [f"{k}=given_{k}" for k in _app_required(root, name)]
    _run_file(path, ["--cfg", "job", *given], monkeypatch)
    printed = OmegaConf.create(capsys.readouterr().out)
    assert printed == compose(name, given, root) and "hydra" not in printed
    assert f"python {folder}/{name}.py" in (path.read_text(encoding="utf-8").split('"""')[1])  # the documented usage


@pytest.mark.parametrize(("folder", "name", "root"), [a for a in APPS if _app_required(a[2], a[1])],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_a_benchmark_missing_its_model_says_one_line(folder: str, name: str, root: Path) -> None:
    with pytest.raises(SystemExit) as info:
        compose_and_run(name, [], lambda cfg: pytest.fail("ran without its required keys"), root, folder)
    assert str(info.value.code).endswith(f"required (python {folder}/{name}.py --help lists the keys)")


def test_benchmark_command_line_is_one_line_without_its_model(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lid_eval.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "lid_eval: model= required (python benchmarks/lid_eval.py --help lists the keys)"


def test_bucketing_padding_runs_on_a_tiny_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.bucketing_padding import main

    manifest = tmp_path / "m.jsonl"
    rows = [{"audio": f"{i}.wav", "text": "a", "lang": "deu_Latn", "duration": 1.0 + i % 7} for i in range(40)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    main([f"manifest={manifest}", "max_batch_seconds=16"])
    out = capsys.readouterr().out
    assert "40 utterances" in out and out.count("x\n") == 4  # one row per bucket count
    with pytest.raises(SystemExit, match="Could not override 'max_seconds'"):
        main(["max_seconds=16"])


def test_convert_checkpoint_needs_exactly_one_direction(tmp_path: Path) -> None:
    from speech.asr.interop.hf import main

    for argv in ([f"output={tmp_path}"], [f"import={tmp_path}", f"export={tmp_path}", f"output={tmp_path}"]):
        with pytest.raises(SystemExit, match=r"^convert_checkpoint: give one of import=.* and export="):
            main(argv)

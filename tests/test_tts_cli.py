"""scripts/synthesize.py in-process: one request, every task flag, and batch synthesis that lists bad requests,
finishes the rest and resumes without redoing finished ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from common.batch_job import EXIT_FAILED
from common.io import read_jsonl_lenient
from common.runner import compose_and_run
from speech.tts import infer
from speech.tts.synthesizer import Options
from tests.helpers import load_script
from tests.test_tts_synth import SR, voice, write_model

synthesize = load_script("synthesize")
FAST = ["nfe=2", "method=euler", "progress=false"]
PROMPT_TEXT = 'prompt_text="ich mag rote äpfel"'


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    sf.write(root / "voice.wav", voice(1.6), SR)
    return write_model(root / "model"), root / "voice.wav"


def cli(overrides: list[str]) -> int:
    return compose_and_run("synthesize", [*overrides, *FAST], synthesize.run)


def test_one_request_per_task_writes_its_wav(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, prompt = setup
    base = [f"model={model}", "lang=deu_Latn", f"prompt={prompt}", PROMPT_TEXT, "seed=1"]
    assert cli([*base, 'text="guten tag"', f"output={tmp_path / 'tts.wav'}"]) == 0
    wav, sr = sf.read(tmp_path / "tts.wav", dtype="float32")
    assert sr == SR and len(wav) > 0
    assert cli([*base, "task=sample", "n=2", 'text="guten tag"', f"output={tmp_path / 's.wav'}"]) == 0
    a, b = (sf.read(tmp_path / f"s_{k}.wav")[0] for k in range(2))
    assert not (len(a) == len(b) and np.allclose(a, b))
    assert cli([*base, "task=continue", 'text="und brot"', f"output={tmp_path / 'c.wav'}"]) == 0
    assert len(sf.read(tmp_path / "c.wav")[0]) > len(sf.read(prompt)[0]) - 256
    assert cli([*base, "task=edit", 'text="ich mag grüne äpfel"', f"output={tmp_path / 'e.wav'}"]) == 0
    assert cli([*base, "task=denoise", "span=[0.2,0.6]", f"output={tmp_path / 'd.wav'}"]) == 0
    assert len(sf.read(tmp_path / "d.wav")[0]) == (len(sf.read(prompt)[0]) // 256) * 256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.wav", "d.wav", "e.wav", "s_0.wav", "s_1.wav", "tts.wav"]


def test_a_bad_single_request_says_why_and_writes_nothing(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, prompt = setup
    out = tmp_path / "out.wav"
    cases = {
        "text: nothing to say": [f"prompt={prompt}", PROMPT_TEXT, 'text="?!"'],
        "cannot say language 'fra_Latn'": [f"prompt={prompt}", PROMPT_TEXT, 'text="bonjour"', "lang=fra_Latn"],
        f"prompt {tmp_path / 'nope.wav'}: file not found": [f"prompt={tmp_path / 'nope.wav'}", PROMPT_TEXT,
                                                            'text="guten tag"'],
        "task=tts needs prompt=": ['text="guten tag"'],
    }
    for reason, args in cases.items():
        with pytest.raises(SystemExit, match=reason):
            cli([f"model={model}", "lang=deu_Latn", *args, f"output={out}"])
        assert not out.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit, match="no such TTS bundle"):
        cli([f"model={tmp_path / 'none'}", "lang=deu_Latn", f"prompt={prompt}", PROMPT_TEXT, 'text="guten tag"',
             f"output={out}"])


def test_batch_lists_bad_requests_finishes_the_rest_and_resumes(setup: tuple[Path, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model, prompt = setup
    sf.write(tmp_path / "other.wav", voice(1.3, f0=210.0), SR)
    rows: list[dict[str, Any]] = [
        {"id": "a", "text": "guten tag", "lang": "deu_Latn", "speaker": "s1"},  # the command line's prompt
        {"id": "b/1", "text": "добрий день", "lang": "ukr_Cyrl", "prompt": "other.wav", "prompt_text": "guten tag",
         "prompt_lang": "deu_Latn"},  # its own prompt (relative to the manifest), cross-lingual
        {"id": "bad", "text": "quiz", "lang": "deu_Latn"},  # characters the model cannot say
        {"id": "c", "text": "brot", "lang": "deu_Latn", "prompt": "missing.wav", "prompt_text": "guten tag"},
    ]
    manifest = tmp_path / "requests.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "{not json\n")
    out = tmp_path / "out"
    args = [f"model={model}", f"input={manifest}", f"output={out}", f"prompt={prompt}", PROMPT_TEXT, "seed=0"]
    assert cli(args) == EXIT_FAILED
    done = read_jsonl_lenient(out / infer.MANIFEST)
    assert [r["id"] for r in done] == ["a", "b/1"]
    assert done[0]["audio"] == "a.wav" and done[1]["audio"] == "b_1.wav" and done[0]["speaker"] == "s1"
    assert all((out / r["audio"]).is_file() and r["seconds"] > 0 for r in done)
    failed = {f["id"]: f["reason"] for f in read_jsonl_lenient(out / infer.FAILED)}
    assert set(failed) == {"bad", "c", f"{manifest}:5"}
    assert "cannot say" in failed["bad"] and "missing.wav: file not found" in failed["c"]
    assert "invalid JSON" in failed[f"{manifest}:5"]
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b_1.wav", "failed.jsonl", "manifest.jsonl"]

    # A re-run redoes only what is missing: the failed requests and a deleted wav.
    (out / "a.wav").unlink()
    calls: list[str] = []
    real = infer.call_args

    def counting(task: str, req: dict[str, Any], options: Options) -> dict[str, Any]:
        calls.append(req["text"])
        return real(task, req, options)

    monkeypatch.setattr(infer, "call_args", counting)
    assert cli(args) == EXIT_FAILED
    assert sorted(calls) == ["brot", "guten tag", "quiz"]
    assert [r["id"] for r in read_jsonl_lenient(out / infer.MANIFEST)] == ["a", "b/1"]
    assert (out / "a.wav").is_file() and not list(out.glob("*.partial")) and not list(out.glob(".*tmp"))


def test_a_text_file_with_a_fixed_prompt(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, prompt = setup
    texts = tmp_path / "texts.txt"
    texts.write_text("guten tag\n\nbrot und äpfel\n", encoding="utf-8")
    out = tmp_path / "out"
    assert cli([f"model={model}", f"input={texts}", f"output={out}", "lang=deu_Latn", f"prompt={prompt}",
                PROMPT_TEXT]) == 0
    rows = read_jsonl_lenient(out / infer.MANIFEST)
    assert [(r["id"], r["text"], r["audio"]) for r in rows] == [("00001", "guten tag", "00001.wav"),
                                                                 ("00003", "brot und äpfel", "00003.wav")]


def test_prompt_requests_pair_each_row_with_another_utterance_of_its_speaker() -> None:
    rows = [{"audio": f"/d/{s}_{i}.wav", "text": f"t{s}{i}", "lang": "deu_Latn", "speaker": s}
            for s in ("x", "y") for i in range(3)] + [{"audio": "/d/z.wav", "text": "tz", "lang": "deu_Latn",
                                                       "speaker": "z"}]
    reqs = infer.prompt_requests(rows)
    assert len(reqs) == 6  # speaker z has no second utterance to prompt with
    for q in reqs:
        assert q["prompt"] != q["ref_audio"] and Path(q["prompt"]).name[0] == q["speaker"]
        assert q["id"] == Path(q["ref_audio"]).stem
    assert len(infer.prompt_requests(rows, per_lang=2)) == 2

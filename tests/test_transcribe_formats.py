"""Transcription outputs: TSV, SRT and WebVTT from word timestamps; long files in batch jobs; model dispatch."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
import torch

from common.io import read_jsonl_lenient
from speech.asr.batch import collect_inputs, transcribe_to_file
from speech.asr.config import CTCModelConfig, conformer
from speech.asr.formats import SubtitleConfig, build_cues, plan_output, render_srt, render_tsv, render_vtt
from speech.asr.hub import save_pretrained
from speech.asr.infer import TRANSCRIBERS, Transcriber, load_transcriber
from speech.asr.model import CTCModel
from speech.audio import SAMPLE_RATE
from tests.helpers import ROOT, speechlike
from text.char_vocab import SPACE, CharVocab

SRT_CUE = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n((?:.+\n){1,2})$")
VTT_TIME = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$")


def words_of(text: str, start: float = 0.0, step: float = 0.4) -> list[dict[str, Any]]:
    return [{"word": w, "start": round(start + i * step, 3), "end": round(start + i * step + 0.3, 3)}
            for i, w in enumerate(text.split())]


def seconds(clock: str) -> float:
    h, m, s = clock.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for i, block in enumerate(text.split("\n\n")[:-1], 1):
        m = SRT_CUE.match(block + "\n")
        assert m, f"bad SRT cue {block!r}"
        assert int(m.group(1)) == i
        cues.append((seconds(m.group(2)), seconds(m.group(3)), m.group(4).splitlines()))
    return cues


def test_cues_respect_line_length_lines_duration_and_pauses() -> None:
    text = "the quick brown fox jumps over the lazy dog and keeps running through the long green field " * 3
    words = words_of(text) + words_of("after a long pause", start=60.0)
    cfg = SubtitleConfig(max_line_chars=20, max_lines=2, max_cue_seconds=5.0, max_gap_seconds=1.5)
    cues = build_cues(words, cfg)
    assert " ".join(" ".join(c.lines) for c in cues).split() == [w["word"] for w in words]
    assert all(len(line) <= 20 for c in cues for line in c.lines)
    assert all(1 <= len(c.lines) <= 2 and c.end - c.start <= 5.0 for c in cues)
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    assert any(c.start == 60.0 for c in cues)  # the pause starts a new cue
    long_word = build_cues([{"word": "x" * 50, "start": 0.0, "end": 1.0}], cfg)
    assert long_word[0].lines == ["x" * 50]


def test_srt_vtt_and_tsv_syntax() -> None:
    cues = build_cues(words_of("eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf", start=3599.5),
                      SubtitleConfig(max_line_chars=15))
    parsed = parse_srt(render_srt(cues))
    assert parsed[0][0] == 3599.5 and parsed[-1][1] > 3600  # hours roll over
    assert [p[2] for p in parsed] == [c.lines for c in cues]
    vtt = render_vtt(cues).split("\n")
    assert vtt[:2] == ["WEBVTT", ""] and VTT_TIME.match(vtt[2]) and vtt[2].startswith("00:59:59.500")
    tsv = render_tsv([{"audio": "a.wav", "lang": None, "duration": 1.5, "text": "tab\there\nnewline"},
                      {"audio": "b.wav", "lang": "deu_Latn", "duration": 2.0, "text": "ok", "ref": "OK"}])
    lines = tsv.splitlines()
    assert lines[0].split("\t") == ["audio", "lang", "duration", "text", "ref"]
    assert lines[1].split("\t") == ["a.wav", "", "1.5", "tab here newline", ""]
    assert all(len(line.split("\t")) == 5 for line in lines)


def test_output_plan_by_suffix_or_format(tmp_path: Path) -> None:
    assert plan_output(tmp_path / "o.jsonl").record == tmp_path / "o.jsonl"
    srt = plan_output(tmp_path / "o.srt")
    assert srt.format == "srt" and srt.record == tmp_path / "o.srt.jsonl" and not srt.per_file
    folder = plan_output(tmp_path / "subs", "vtt")
    assert folder.per_file and folder.record == tmp_path / "subs" / "transcripts.jsonl"
    with pytest.raises(ValueError, match="format="):
        plan_output(tmp_path / "o.txt")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model that rarely predicts blank, so its transcripts have words to time."""
    torch.manual_seed(0)
    vocab = CharVocab(list("abcdefghij"))
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=conformer(d_model=32, num_layers=1, num_heads=2,
                                                                             conv_kernel=5)))
    with torch.no_grad():
        model.head.bias[vocab.blank_id] = -3.0
        model.head.bias[vocab.index[SPACE]] += 0.5  # word breaks now and then, whatever the audio
    return save_pretrained(model, vocab, tmp_path_factory.mktemp("model") / "m")


@pytest.fixture()
def talk(tmp_path: Path) -> Path:
    """About 25 s of speech-like sound with pauses (synthetic, so the untrained model's output stays the same)."""
    sf.write(tmp_path / "talk.wav", speechlike(25.0, seed=3, pauses=True), SAMPLE_RATE)
    return tmp_path / "talk.wav"


def test_cli_writes_srt_for_a_long_file_and_resumes(model_dir: Path, talk: Path, tmp_path: Path) -> None:
    out = tmp_path / "talk.srt"
    cmd = [sys.executable, str(ROOT / "scripts" / "transcribe.py"), f"model={model_dir}", f"input={talk}",
           f"output={out}", "progress=false", "chunk_seconds=6", "overlap_seconds=1", "subtitles.max_line_chars=30"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = read_jsonl_lenient(tmp_path / "talk.srt.jsonl")
    assert row["duration"] == pytest.approx(sf.info(str(talk)).duration, abs=0.01) and len(row["words"]) >= 2
    cues = parse_srt(out.read_text(encoding="utf-8"))
    assert [w for c in cues for line in c[2] for w in line.split()] == [w["word"] for w in row["words"]]
    assert all(len(line) <= 30 or " " not in line for c in cues for line in c[2])
    assert all(0 <= s < e <= row["duration"] for s, e, _ in cues)
    # A re-run skips the finished file and writes the same subtitles.
    before = out.read_text(encoding="utf-8")
    t = Transcriber.from_pretrained(model_dir, chunk_seconds=6, overlap_seconds=1)
    report = transcribe_to_file(t, collect_inputs(talk), out, progress=False,
                                subtitles=SubtitleConfig(max_line_chars=30))
    assert report.done == 0 and report.skipped_existing == 1 and out.read_text(encoding="utf-8") == before


def test_folder_to_vtt_files_mixing_short_long_and_bad(model_dir: Path, talk: Path, tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    wave = sf.read(talk, dtype="float32")[0]
    sf.write(tmp_path / "in" / "long.flac", wave, SAMPLE_RATE)
    sf.write(tmp_path / "in" / "sub" / "short.wav", wave[: 3 * SAMPLE_RATE], SAMPLE_RATE)
    (tmp_path / "in" / "broken.mp3").write_bytes(os.urandom(3000))
    t = Transcriber.from_pretrained(model_dir, chunk_seconds=6, overlap_seconds=1)
    report = transcribe_to_file(t, collect_inputs(tmp_path / "in"), tmp_path / "subs", progress=False, fmt="vtt",
                                timestamps="char")
    assert report.done == 2 and [Path(f["audio"]).name for f in report.failed] == ["broken.mp3"]
    rows = {Path(r["audio"]).name: r for r in read_jsonl_lenient(tmp_path / "subs" / "transcripts.jsonl")}
    assert set(rows) == {"long.flac", "short.wav"} and all("chars" in r for r in rows.values())
    assert rows["long.flac"]["duration"] > 20 and rows["short.wav"]["duration"] == 3.0
    for name in ("long.vtt", "sub/short.vtt"):
        text = (tmp_path / "subs" / name).read_text(encoding="utf-8")
        assert text.startswith("WEBVTT\n\n") and VTT_TIME.match(text.split("\n")[2])
    assert (tmp_path / "subs.failed.jsonl").exists()
    # Words were asked for now but not before: such rows are redone, not skipped.
    again = transcribe_to_file(t, collect_inputs(tmp_path / "in"), tmp_path / "o.tsv", progress=False)
    assert again.done == 2
    assert (tmp_path / "o.tsv").read_text(encoding="utf-8").splitlines()[0] == "audio\tlang\tduration\ttext"


def test_python_api_timestamps_and_long_inputs(model_dir: Path, talk: Path) -> None:
    t = Transcriber.from_pretrained(model_dir, chunk_seconds=6, overlap_seconds=1)
    wave = sf.read(talk, dtype="float32")[0]
    texts = t.transcribe([talk, wave, talk.read_bytes()])
    assert texts[0] == texts[1] and all(isinstance(x, str) for x in texts)
    rows = t.transcribe([str(talk), wave[: 2 * SAMPLE_RATE]], timestamps="word")
    assert isinstance(rows[0], dict) and rows[0]["text"] == texts[0]
    assert [w["word"] for w in rows[0]["words"]] == texts[0].split()
    with pytest.raises(ValueError, match="timestamps"):
        t.transcribe([wave], timestamps="yes")


class FakeLLM:
    """Stands in for the LLM-ASR transcriber: records how it was built."""

    def __init__(self, path: str, device: str, context: str | None):
        self.path, self.device, self.context = path, device, context

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", context: str | None = None) -> FakeLLM:
        return cls(path, device, context)


def test_load_transcriber_dispatches_on_model_type(model_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(load_transcriber(model_dir, decoder="greedy"), Transcriber)
    with pytest.raises(ValueError, match="LLM-ASR"):
        load_transcriber(model_dir, context="examples.jsonl")
    llm_dir = tmp_path / "llm"
    llm_dir.mkdir()
    (llm_dir / "config.json").write_text(json.dumps({"model_type": "asr_llm"}))
    assert "asr_llm" in TRANSCRIBERS  # loads the registered transcribers before one is swapped for a fake
    monkeypatch.setitem(TRANSCRIBERS.entries, "asr_llm", FakeLLM)
    llm = load_transcriber(llm_dir, "cpu", context="examples.jsonl", decoder="greedy", chunk_seconds=30)
    assert isinstance(llm, FakeLLM) and llm.context == "examples.jsonl"

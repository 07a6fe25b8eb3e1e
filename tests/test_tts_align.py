"""TTS durations by CTC forced alignment: frame conversion, known paths, bad rows, resume (scripts/tts_align.py)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from common.runner import compose_and_run
from speech.asr.align import token_spans
from speech.audio import SAMPLE_RATE, write_audio
from speech.tts.align import align_durations, assign_silence, enforce_min, path_score, to_mel, unit_boundaries
from speech.tts.units import char_units
from speech.vocoder.mel import MelSpec
from tests.helpers import load_script, speechlike

SPEC = MelSpec()


def test_durations_always_sum_to_the_mel_frame_count() -> None:
    rng = random.Random(0)
    for _ in range(400):
        n = rng.randint(1, 30)  # characters
        frames = rng.randint(n, 3 * n + 20)  # ASR frames
        starts = sorted(rng.sample(range(frames), n))
        spans = [(s, rng.randint(s + 1, nxt)) for s, nxt in zip(starts, [*starts[1:], frames])]
        frame_samples = rng.choice([320, 640, 960])
        samples = max(1, frames * frame_samples + rng.randint(-2 * frame_samples, 2 * frame_samples))
        units = [" ", *rng.choices("ab ", k=n - 1), "c", " "]
        total = SPEC.frames(samples)
        energy = [rng.uniform(-12, -2) for _ in range(total)] if rng.random() < 0.5 else None
        try:
            durs = align_durations(units, spans, frames, frame_samples, samples, energy,
                                   frame_offset=rng.choice([0.0, 0.5, 1.0]))
        except ValueError as e:  # only when the audio can't give every character a frame
            assert sum(u != " " for u in units) > total, e
            continue
        assert sum(durs) == total and len(durs) == len(units)
        assert all(d >= 0 for d in durs)
        assert all(d >= 1 for u, d in zip(units, durs) if u != " ")


def test_a_known_ctc_path_gives_its_durations() -> None:
    # Path over 11 ASR frames: _ _ a _ b b ␣ c _ _ _  (ids: blank 0, space 2, a 3, b 4, c 5).
    path = [0, 0, 3, 0, 4, 4, 2, 5, 0, 0, 0]
    logp = torch.full((len(path), 6), math.log(0.02))
    logp[torch.arange(len(path)), torch.tensor(path)] = math.log(0.9)
    spans = token_spans(logp, [3, 4, 2, 5])
    assert spans == [(2, 3), (4, 6), (6, 7), (7, 8)]
    assert unit_boundaries(spans, 11) == [0.0, 2.0, 3.5, 6.0, 7.0, 8.0, 11.0]
    # Boundary b at sample (b - 1) * 640; a unit holds the mel frames whose centres (j * 256) it covers.
    durs = align_durations([" ", "a", "b", " ", "c", " "], spans, 11, 640, 11 * 640, frame_offset=1.0)
    assert durs == [3, 4, 6, 2, 3, 10]
    assert path_score(logp, spans, [3, 4, 2, 5]) == pytest.approx(math.log(0.9), abs=1e-5)
    # Half a frame less offset moves every inner boundary later, never the ends.
    assert to_mel([0.0, 2.0, 11.0], 640, 11 * 640, frame_offset=0.5) == [0, 4, 28]


def test_silence_units_take_the_quiet_frames_next_to_them() -> None:
    silent = [True, False, True, False, True]  # ␣ a ␣ b ␣
    energy = [-12.0] * 2 + [-3.0] * 6 + [-12.0] * 4 + [-3.0] * 5 + [-12.0] * 3  # 20 frames
    cum = [0, 4, 10, 14, 19, 20]  # the spikes' boundaries: "a" reaches into the pause, "b" into the tail
    assert assign_silence(cum, silent, energy, 5.0) == [0, 2, 8, 14, 17, 20]  # the space's loud frames stay
    # A character keeps a frame even where it is all quiet; the edge keeps its side.
    assert enforce_min([0, 5, 5, 9], [0, 1, 0]) == [0, 5, 6, 9]
    with pytest.raises(ValueError, match="need a frame each"):
        enforce_min([0, 1, 1, 1], [0, 1, 1])


class FakeTranscriber:
    """Stands in for the suite's CTC ASR: one frame per 640 samples, random log-probs, counts what it hears."""

    frame_samples = 640

    def __init__(self, chars: str):
        from text.char_vocab import CharVocab

        self.vocab = CharVocab(list(chars))
        self.heard = 0

    def log_probs(self, waves: list[np.ndarray], langs: object = None) -> tuple[torch.Tensor, torch.Tensor]:
        self.heard += len(waves)
        lens = torch.tensor([len(w) // self.frame_samples + 1 for w in waves])
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(len(waves), int(lens.max()), len(self.vocab), generator=gen)
        return logits.log_softmax(-1), lens


def _manifest(folder: Path) -> Path:
    """Four rows: two good, one with a letter outside the ASR alphabet, one far too short for its text."""
    rows = [("good1", "hallo welt", 1.5), ("greek", "hallo λ", 1.0), ("good2", "wo ist der hund", 2.0),
            ("short", "der hund ist da " * 5, 0.1)]
    for i, (name, _, seconds) in enumerate(rows):
        write_audio(folder / f"{name}.wav", speechlike(seconds, seed=i))
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps({"audio": f"{n}.wav", "text": t, "lang": "deu_Latn", "duration": s}) + "\n"
                            for n, t, s in rows), encoding="utf-8")
    return path


def test_bad_rows_fail_with_a_reason_and_the_rest_finish(tmp_path: Path) -> None:
    script = load_script("tts_align")
    fake = FakeTranscriber("halowetisdrundn ")
    manifest, out = _manifest(tmp_path), tmp_path / "aligned" / "train.jsonl"
    report = script.align_manifest(script.Aligner(fake), manifest, out, batch_size=2, progress=False)
    assert report.exit_code == 3 and report.done == 2
    lines = Path(f"{out}.failed.jsonl").read_text().splitlines()
    failed = {Path(f["audio"]).stem: f["reason"] for f in map(json.loads, lines)}
    assert "outside the ASR alphabet: 'λ'" in failed["greek"]
    assert "too short" in failed["short"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["audio"]).stem for r in rows] == ["good1", "good2"]
    for r in rows:
        assert (out.parent / r["audio"]).resolve() == (tmp_path / Path(r["audio"]).name).resolve()
        assert r["units"] == char_units(r["text"], "deu_Latn")
        samples = round(r["duration"] * SAMPLE_RATE)
        assert sum(r["durations"]) == SPEC.frames(samples) and min(r["durations"][1:-1]) >= 1
        assert r["align_score"] < 0
    # The failed rows are heard again on a re-run; the finished ones are not.
    fake.heard = 0
    script.align_manifest(script.Aligner(fake), manifest, out, batch_size=2, progress=False)
    assert fake.heard == 0  # neither failure reaches the ASR: one is stopped by its text, one by its length
    assert len(out.read_text().splitlines()) == 2


def test_resume_after_an_interruption_skips_finished_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script("tts_align")
    fake = FakeTranscriber("halowetisdrundn ")
    manifest, out = _manifest(tmp_path), tmp_path / "train.aligned.jsonl"
    aligner = script.Aligner(fake)
    real = aligner.process
    calls = []

    def crash_on_the_last(batch: list) -> list:  # batches go shortest first: short, greek, good1, good2
        calls.append(batch[0].id)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(batch)

    monkeypatch.setattr(aligner, "process", crash_on_the_last)
    with pytest.raises(KeyboardInterrupt):
        script.align_manifest(aligner, manifest, out, batch_size=1, progress=False)
    assert not out.exists() and len(Path(f"{out}.partial").read_text().splitlines()) == 1
    assert calls[2] == "good1.wav"
    calls.clear()

    def record(batch: list) -> list:
        calls.append(batch[0].id)
        return real(batch)

    monkeypatch.setattr(aligner, "process", record)
    report = script.align_manifest(aligner, manifest, out, batch_size=1, progress=False)
    assert report.skipped_existing == 1 and sorted(calls) == ["good2.wav", "greek.wav", "short.wav"]
    assert len(out.read_text().splitlines()) == 2 and not Path(f"{out}.partial").exists()


def test_the_command_aligns_every_split_of_a_corpus_with_a_suite_model(tmp_path: Path) -> None:
    from speech.asr.config import CTCModelConfig
    from speech.asr.hub import save_pretrained
    from speech.asr.model import CTCModel
    from speech.encoders.conformer import ConformerConfig
    from text.char_vocab import CharVocab

    vocab = CharVocab(list("halowetisdrundn "))
    encoder = ConformerConfig(d_model=32, num_layers=1, num_heads=2, conv_kernel=5)
    model_dir = tmp_path / "asr"
    save_pretrained(CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=encoder)), vocab, model_dir)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _manifest(corpus)
    (corpus / "dev.jsonl").write_text((corpus / "train.jsonl").read_text().splitlines()[0] + "\n")
    script = load_script("tts_align")
    code = compose_and_run("tts_align", [f"asr={model_dir}", f"corpus={corpus}", f"output_dir={tmp_path / 'out'}",
                                         "splits=[train,dev]", "progress=false"], script.run)
    assert code == 3  # two bad rows in train
    assert len((tmp_path / "out" / "train.jsonl").read_text().splitlines()) == 2
    dev = json.loads((tmp_path / "out" / "dev.jsonl").read_text())
    assert sum(dev["durations"]) == SPEC.frames(int(1.5 * SAMPLE_RATE))
    with pytest.raises(SystemExit, match="manifest= and output="):
        compose_and_run("tts_align", [f"asr={model_dir}"], script.run)

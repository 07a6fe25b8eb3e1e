"""The Voicebox tasks of the Synthesizer on tiny random models saved through the hub: what each keeps, what it
generates, seeds, cross-lingual prompts and every bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.tts import tasks
from speech.tts.bundle import GRIFFIN_LIM, read_bundle, save_bundle
from speech.tts.config import flow_tts
from speech.tts.duration import DurationModel, duration_tiny
from speech.tts.duration_hub import save_pretrained as save_duration
from speech.tts.hub import save_pretrained as save_acoustic
from speech.tts.model import FlowTTS
from speech.tts.synthesizer import Synthesizer
from speech.tts.units import char_units
from speech.tts.vocab import UnitVocab
from speech.vocoder.mel import LogMelSpectrogram

SR = 16_000
LANGS = ["deu_Latn", "ukr_Cyrl"]
TEXTS = [("ich mag rote äpfel und brot", "deu_Latn"), ("guten tag welt grüne", "deu_Latn"),
         ("добрий день кіт", "ukr_Cyrl")]
FAST: dict[str, Any] = {"nfe": 2, "method": "euler"}


def write_model(root: Path, max_frames: int = 400, with_duration: bool = True) -> Path:
    """A tiny acoustic model (with a tiny duration model in ``duration/``) saved as a bundle directory."""
    torch.manual_seed(0)
    vocab = UnitVocab.build(TEXTS)
    cfg = flow_tts(dim=32, depth=2, heads=2, unit_dim=8, conv_pos_groups=4, vocab_size=len(vocab), dropout=0.0,
                   max_frames=max_frames)
    save_acoustic(FlowTTS(cfg), vocab, root, langs=LANGS)
    if with_duration:
        dur = DurationModel(duration_tiny(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, vocab_size=len(vocab),
                                          num_langs=len(LANGS) + 1))
        save_duration(dur, vocab, root / "duration", langs=LANGS)
    return root


def voice(seconds: float, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise: loud enough, not silent, some seconds long."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.2 * wave + 0.01 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("tts") / "model")


@pytest.fixture(scope="module")
def synth(bundle: Path) -> Synthesizer:
    return Synthesizer.from_pretrained(bundle)


@pytest.fixture(scope="module")
def prompt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "prompt.wav"
    sf.write(path, voice(1.6), SR)
    return path


def mel_of(path: Path) -> torch.Tensor:
    wav, _ = sf.read(path, dtype="float32")
    return LogMelSpectrogram()(torch.from_numpy(wav)[None])[0]


# Pure task logic


def test_edit_span_finds_the_changed_words_with_their_boundaries() -> None:
    old, new = char_units("ich mag rote äpfel", "deu_Latn"), char_units("ich mag grüne äpfel", "deu_Latn")
    span = tasks.edit_span(old, new)
    assert "".join(old[span.start : span.old_end]) == " rote "
    assert "".join(new[span.start : span.new_end]) == " grüne "
    assert old[: span.start] == new[: span.start] and old[span.old_end :] == new[span.new_end :]
    ins = tasks.edit_span(char_units("a c"), char_units("a b c"))  # an insertion replaces one boundary
    assert (ins.start, ins.old_end, ins.new_end) == (2, 3, 5)
    dele = tasks.edit_span(char_units("a b c"), char_units("a c"))  # a deletion keeps one
    assert (dele.start, dele.old_end, dele.new_end) == (2, 5, 3)
    with pytest.raises(ValueError, match="same"):
        tasks.edit_span(char_units("a b"), char_units("A, b!"))


def test_plans_keep_and_generate_the_right_frames() -> None:
    old, new = char_units("ab cd ef"), char_units("ab xyz ef")
    durs = [2, 3, 3, 1, 4, 4, 1, 5, 5, 2]
    span = tasks.edit_span(old, new)
    plan = tasks.edit_plan(old, durs, new, span, [1, 2, 2, 2, 1])
    src = plan.source_index()
    b = tasks.bounds(durs)
    assert src[: b[span.start]] == list(range(b[span.start]))  # the head, frame for frame
    assert src[-(b[-1] - b[span.old_end]):] == list(range(b[span.old_end], b[-1]))  # the tail
    assert src.count(-1) == 8 and plan.frames == sum(durs) - 10 + 8  # " cd " (10 frames) became 8
    tts = tasks.tts_plan(["a"] * 3, [2, 2, 2], ["b"] * 2, [3, 3])
    assert tts.source_index() == [0, 1, 2, 3, 4, 5] + [-1] * 6 and tts.output == (6, 12)
    assert tasks.infill_plan(["a"] * 2, [3, 3], (2, 4)).source_index() == [0, 1, -1, -1, 4, 5]
    assert tasks.uniform_durations(3, 10) == [3, 4, 3] and sum(tasks.rate_durations(60, 10, 7)) == 42
    assert tasks.span_frames((0.5, 1.0), 100, 62.5) == (31, 64)
    with pytest.raises(ValueError, match="inside"):
        tasks.span_frames((1.0, 9.0), 100, 62.5)


# Every task end to end


def test_tts_cross_lingual_and_reproducible_seeds(synth: Synthesizer, prompt: Path) -> None:
    out = synth.tts("guten tag", "deu_Latn", prompt, "ich mag rote äpfel", seed=3, **FAST)
    assert out.wav.dtype == np.float32 and out.sample_rate == SR and out.mel.shape[1] == 80
    assert out.generated == (0, len(out.mel)) and len(out.wav) == (len(out.mel) - 1) * 256
    again = synth.tts("guten tag", "deu_Latn", prompt, "ich mag rote äpfel", seed=3, **FAST)
    assert torch.equal(out.mel, again.mel) and np.array_equal(out.wav, again.wav)
    cross = synth.tts("добрий день", "ukr_Cyrl", prompt, "ich mag rote äpfel", prompt_lang="deu_Latn", **FAST)
    assert len(cross.mel) > 0 and np.isfinite(cross.wav).all()


def test_sampling_gives_different_renditions_per_seed(synth: Synthesizer, prompt: Path) -> None:
    outs = synth.sample("guten tag welt", "deu_Latn", prompt, "ich mag rote äpfel", n=3, seed=10, **FAST)
    assert [o.seed for o in outs] == [10, 11, 12]
    assert not torch.allclose(outs[0].mel, outs[1].mel) and not torch.allclose(outs[1].mel, outs[2].mel)
    one = synth.tts("guten tag welt", "deu_Latn", prompt, "ich mag rote äpfel", seed=11, **FAST)
    assert torch.allclose(one.mel, outs[1].mel, atol=1e-4)  # a seed's rendition does not depend on the batch


def test_continuation_keeps_the_prompt_frames_exactly(synth: Synthesizer, prompt: Path) -> None:
    out = synth.continue_(prompt, "ich mag rote äpfel", "und brot", "deu_Latn", seed=0, **FAST)
    ref = mel_of(prompt)
    assert out.generated == (len(ref), len(out.mel))
    assert torch.equal(out.mel[: len(ref)], ref)


def test_edit_keeps_the_frames_outside_the_span_bit_for_bit(synth: Synthesizer, prompt: Path) -> None:
    text, new = "ich mag rote äpfel", "ich mag grüne äpfel"
    units = char_units(text, "deu_Latn")
    ref = mel_of(prompt)
    durs = tasks.uniform_durations(len(units), len(ref))
    out = synth.edit(prompt, text, new, "deu_Latn", durations=durs, seed=0, **FAST)
    span = tasks.edit_span(units, char_units(new, "deu_Latn"))
    b = tasks.bounds(durs)
    head, tail = b[span.start], b[-1] - b[span.old_end]
    assert out.generated[0] == head and len(out.mel) - out.generated[1] == tail
    assert torch.equal(out.mel[:head], ref[:head])
    assert torch.equal(out.mel[len(out.mel) - tail :], ref[b[span.old_end] :])
    assert not torch.equal(out.mel[head : out.generated[1]], ref[head : out.generated[1]])
    # Without given durations the duration model estimates the alignment; the outside is still kept.
    est = synth.edit(prompt, text, new, "deu_Latn", seed=0, **FAST)
    assert torch.equal(est.mel[: est.generated[0]], ref[: est.generated[0]])


def test_denoise_regenerates_only_the_span(synth: Synthesizer, prompt: Path) -> None:
    ref = mel_of(prompt)
    out = synth.denoise(prompt, "ich mag rote äpfel", "deu_Latn", span=(0.4, 0.8), seed=0, **FAST)
    a, b = out.generated
    assert (a, b) == (25, 51) and len(out.mel) == len(ref)
    assert torch.equal(out.mel[:a], ref[:a]) and torch.equal(out.mel[b:], ref[b:])
    assert not torch.equal(out.mel[a:b], ref[a:b])


def test_bundle_json_and_fallback_without_a_duration_model(tmp_path: Path, prompt: Path) -> None:
    acoustic = write_model(tmp_path / "acoustic", with_duration=False)
    out = save_bundle(acoustic, None, GRIFFIN_LIM, tmp_path / "bundle")
    assert json.loads((out / "bundle.json").read_text())["acoustic"] == "../acoustic"
    b = read_bundle(out)
    assert Path(b.acoustic).resolve() == acoustic.resolve() and b.duration is None and b.vocoder == GRIFFIN_LIM
    synth = Synthesizer.from_pretrained(out)
    assert synth.durations is None
    res = synth.tts("guten tag welt", "deu_Latn", prompt, "ich mag rote äpfel", seed=0, **FAST)
    # The prompt's rate: 101 frames for 20 units, so 16 new units take 81 frames.
    assert len(res.mel) == round(101 / 20 * 16)
    with pytest.raises(ValueError, match="duration model"):
        save_bundle(acoustic, acoustic, GRIFFIN_LIM, tmp_path / "bad")


# Bad input: one ValueError naming the reason (and the file), nothing generated


def test_bad_text_and_languages(synth: Synthesizer, prompt: Path) -> None:
    args = (prompt, "ich mag rote äpfel")
    with pytest.raises(ValueError, match="text: nothing to say"):
        synth.tts("", "deu_Latn", *args)
    with pytest.raises(ValueError, match="text: nothing to say"):
        synth.tts(" ?! ", "deu_Latn", *args)
    with pytest.raises(ValueError, match="cannot say language 'fra_Latn'"):
        synth.tts("bonjour", "fra_Latn", *args)
    with pytest.raises(ValueError, match="text: the model cannot say 'sßqk'"):
        synth.tts("süß quark", "deu_Latn", *args)
    with pytest.raises(ValueError, match="prompt_text: nothing to say"):
        synth.tts("guten tag", "deu_Latn", prompt, "...")
    with pytest.raises(ValueError, match="new_text: the model cannot say"):
        synth.edit(prompt, "ich mag rote äpfel", "ich mag xylophon", "deu_Latn")
    with pytest.raises(ValueError, match="nothing to edit"):
        synth.edit(prompt, "ich mag rote äpfel", "Ich mag rote Äpfel!", "deu_Latn")


def test_bad_prompts_name_the_file(synth: Synthesizer, prompt: Path, tmp_path: Path) -> None:
    def expect(path: Path, reason: str) -> None:
        with pytest.raises(ValueError, match=reason) as e:
            synth.tts("guten tag", "deu_Latn", path, "ich mag rote äpfel")
        assert str(path) in str(e.value)

    expect(tmp_path / "missing.wav", "file not found")
    (tmp_path / "junk.wav").write_bytes(b"not a wave file at all" * 10)
    expect(tmp_path / "junk.wav", "unreadable audio")
    sf.write(tmp_path / "silent.wav", np.zeros(2 * SR, dtype=np.float32), SR)
    expect(tmp_path / "silent.wav", "silent")
    sf.write(tmp_path / "short.wav", voice(0.5), SR)
    expect(tmp_path / "short.wav", "too short")
    sf.write(tmp_path / "long.wav", voice(7.0), SR)  # the tiny model takes 400 frames = 6.4 s
    expect(tmp_path / "long.wav", "longer than the model takes")
    with pytest.raises(ValueError, match="longer than the model takes"):  # prompt and text together too long
        synth.tts("guten tag welt " * 30, "deu_Latn", voice(5.5), "ich mag rote äpfel")
    with pytest.raises(ValueError, match="prompt waveform: silent"):
        synth.tts("guten tag", "deu_Latn", np.zeros(SR * 2, dtype=np.float32), "ich mag rote äpfel")
    with pytest.raises(ValueError, match="prompt waveform: 111 characters of text but only 63 frames"):
        synth.tts("guten tag", "deu_Latn", voice(1.0), "ich mag rote äpfel und brot " * 4)
    with pytest.raises(ValueError, match="not inside the audio"):
        synth.denoise(prompt, "ich mag rote äpfel", "deu_Latn", span=(1.0, 5.0))

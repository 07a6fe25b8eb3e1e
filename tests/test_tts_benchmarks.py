"""benchmarks/tts_quality.py, tts_speed.py and tts_figures.py end to end on tiny random models saved through the hub
(TTS bundle, ASR, speaker encoder) and a four-row corpus of two voices; the figures' arithmetic on fixed inputs."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import tts_figures, tts_quality, tts_speed, vocoder_quality
from benchmarks.tts_quality import Request
from speech.asr.config import CTCModelConfig
from speech.asr.hub import save_pretrained as save_asr
from speech.asr.model import CTCModel
from speech.audio import write_audio
from speech.encoders.conformer import ConformerConfig
from speech.speaker.config import ecapa_tiny
from speech.speaker.hub import save_pretrained as save_speaker
from speech.speaker.model import SpeakerEncoder
from speech.tts.bundle import save_bundle
from speech.tts.infer import write_prompt_requests
from speech.tts.units import char_units
from speech.vocoder.config import vocos_tiny
from speech.vocoder.hub import save_vocoder
from speech.vocoder.mel import MelSpec
from speech.vocoder.model import Vocoder
from tests.test_speaker import MICRO
from tests.test_tts_synth import voice, write_model
from text.char_vocab import CharVocab

SENTENCES = ["ich mag rote äpfel und brot", "guten tag welt grüne"]
FAST = ["nfe=2", "method=euler"]


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny bundle, ASR and speaker encoder, and requests for two voices saying two sentences each."""
    root = tmp_path_factory.mktemp("tts_bench")
    bundle = write_model(root / "bundle")
    torch.manual_seed(0)
    save_speaker(SpeakerEncoder(ecapa_tiny(**MICRO)).eval(), root / "speaker")
    vocab = CharVocab(sorted(set("".join(SENTENCES))))
    encoder = ConformerConfig(d_model=32, num_layers=1, num_heads=2, conv_kernel=5)
    save_asr(CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=encoder)), vocab, root / "asr")
    rows = []
    for s, f0 in enumerate((120.0, 210.0)):
        for i, text in enumerate(SENTENCES):
            path = root / "corpus" / f"s{s}_{i}.wav"
            write_audio(path, voice(1.6, f0=f0, seed=10 * s + i))
            rows.append({"audio": path.name, "text": text, "lang": "deu_Latn", "speaker": f"spk{s}"})
    manifest = root / "corpus" / "test.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    requests, _ = write_prompt_requests(manifest, root / "tts")
    save_vocoder(Vocoder(vocos_tiny(dim=16, intermediate_dim=32, num_layers=1)), root / "vocos")
    neural = save_bundle(bundle, bundle / "duration", root / "vocos", root / "neural_bundle")
    return {"bundle": bundle, "neural_bundle": neural, "speaker": root / "speaker", "asr": root / "asr",
            "requests": requests, "manifest": manifest}


def args(setup: dict[str, Path], out: Path, fast: bool = True) -> list[str]:
    return [f"model={setup['bundle']}", f"requests={setup['requests']}", f"asr={setup['asr']}",
            f"speaker={setup['speaker']}", f"out={out}", *(FAST if fast else [])]


# Arithmetic on fixed inputs


def test_cer_difference_is_in_points_per_language_against_the_target() -> None:
    gen = {"deu_Latn": {"cer": 0.12, "wer": 0.3, "n": 8.0}, "all": {"cer": 0.07, "wer": 0.2, "n": 16.0}}
    ref = {"deu_Latn": {"cer": 0.08, "wer": 0.2, "n": 8.0}, "all": {"cer": 0.05, "wer": 0.1, "n": 16.0}}
    out = tts_quality.cer_difference(gen, ref)
    assert out["deu_Latn"]["difference_points"] == pytest.approx(4.0) and not out["deu_Latn"]["within_target"]
    assert out["all"]["difference_points"] == pytest.approx(2.0) and out["all"]["within_target"]
    assert out["deu_Latn"]["generated_cer"] == pytest.approx(12.0) and out["all"]["n"] == 16
    better = tts_quality.cer_difference({"x": {"cer": 0.01, "n": 1.0}}, {"x": {"cer": 0.2, "n": 1.0}})
    assert better["x"]["difference_points"] == pytest.approx(-19.0) and better["x"]["within_target"]
    rates = tts_quality.error_rates(["Guten Tag!", "ich mag"], ["guten tag", "ich mag rot"], ["deu_Latn"] * 2)
    assert rates["deu_Latn"]["cer"] == pytest.approx(4 / 20)  # punctuation and case do not count


def test_similarity_gap_fraction_of_fixed_embeddings() -> None:
    # Unit vectors at known angles: cos(prompt, same) = 0.8, cos(prompt, other) = 0.2, generated halfway = 0.5.
    def at(c: float) -> list[float]:
        return [c, math.sqrt(1 - c * c)]

    prompt, same, other = (torch.tensor([p] * 4) for p in ([1.0, 0.0], at(0.8), at(0.2)))
    gen = torch.tensor([at(0.5), at(0.5), at(0.8), at(0.2)])
    base = tts_quality.Baseline(None, None, {"prompt": prompt, "same": same, "other": other})

    class Fixed:
        def embed(self, waves: list[np.ndarray]) -> torch.Tensor:
            return gen

    reqs = [Request(str(i), "a", "deu_Latn", spk, "p", "b", "r") for i, spk in enumerate(["a", "a", "b", "c"])]
    sim = tts_quality.score_generated(tts_quality.Judges(None, Fixed()), base, reqs, [np.zeros(1)] * 4)  # type: ignore[arg-type]
    report = sim["similarity"]
    assert report["gap_fraction"] == pytest.approx(0.5) and report["ceiling"] == pytest.approx(0.8)
    assert report["per_speaker"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.0})
    assert report["worst"] == pytest.approx(0.0) and report["spread"] == pytest.approx(np.std([0.5, 1.0, 0.0]))
    assert not report["reaches_target"]


def test_span_errors_count_only_the_edited_word() -> None:
    ref = "ich mag grüne äpfel"
    span = (8, 13)  # "grüne"
    assert tts_quality.span_errors("ich mag grüne äpfel", ref, span) == 0
    assert tts_quality.span_errors("ich mag grüne apfel", ref, span) == 0  # an error elsewhere
    assert tts_quality.span_errors("ich mag rüne äpfel", ref, span) == 1
    assert tts_quality.span_errors("ich mag grünexx äpfel", ref, span) == 2  # insertions at its edge count
    assert tts_quality.span_errors("", ref, span) == 5


def test_edit_text_replaces_one_inner_word_and_noise_has_the_asked_snr() -> None:
    old, new, (a, b) = tts_quality.edit_text("Ich mag rote Äpfel.", "deu_Latn", ["guten tag welt"],
                                             random.Random(0)) or ("", "", (0, 0))
    assert old == "ich mag rote äpfel" and new[a:b] in {"guten", "tag", "welt"}
    assert new.split()[0] == "ich" and new.split()[-1] == "äpfel" and len(new.split()) == 4
    assert tts_quality.edit_text("hallo", "deu_Latn", ["guten tag"], random.Random(0)) is None
    clean = voice(1.0)
    noisy = tts_quality.add_noise(clean, 5.0, (4000, 12000), np.random.default_rng(0))
    noise = noisy - clean
    assert not noise[:4000].any() and not noise[12000:].any()
    snr = 10 * np.log10(np.mean(clean[4000:12000].astype(np.float64) ** 2) / np.mean(noise[4000:12000] ** 2))
    assert snr == pytest.approx(5.0, abs=1e-3)


def test_outside_distance_compares_head_with_head_and_tail_with_tail() -> None:
    source = torch.arange(10.0)[:, None].expand(10, 3)  # frame k holds k
    edited = torch.cat([source[:3], torch.full((5, 3), 99.0), source[6:]])  # frames 3-5 became 5 new ones
    assert tts_quality.outside_l1(source, edited, (3, 8)) == 0.0
    assert tts_quality.outside_l1(source, edited + 1, (3, 8)) == pytest.approx(1.0)


# End to end


def test_quality_writes_every_figure(setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    report = tts_quality.main([*args(setup, tmp_path), "per_lang=4", "task_per_lang=2"])
    saved = json.loads((tmp_path / "tts_quality.json").read_text(encoding="utf-8"))
    assert set(saved) == {"command", "settings", "intelligibility", "similarity", "editing", "denoising"}
    assert saved["command"] == report["command"] and saved["command"].startswith("python benchmarks/tts_quality.py")
    intel = saved["intelligibility"]["per_lang"]
    assert set(intel) == {"deu_Latn", "all"} and intel["all"]["n"] == 4
    assert set(intel["all"]) >= {"generated_cer", "reference_cer", "difference_points", "within_target"}
    assert len(list((tmp_path / "generated").glob("*.wav"))) == 4  # generated=null: synthesized here
    assert set(saved["similarity"]) >= {"target", "per_speaker", "summary"}
    edit = saved["editing"]
    assert edit["n"] == 2 and edit["outside_mel_l1_before_vocoder"] == 0.0  # kept frames are copied bit for bit
    assert edit["outside_mel_l1_after_vocoder"] > 0
    assert set(edit["per_lang"]["all"]) == {"cer_edited", "cer_original", "span_cer", "n"}
    den = saved["denoising"]
    # STOI and PESQ where pystoi / pesq are installed (the tts extra; the default test setup leaves them out).
    assert den["n"] == 2 and set(den["noisy"]) == set(vocoder_quality.intelligibility_scorers())
    assert set(den) >= {"denoised", "clean_resynthesis", "utterances"}
    assert len(list((tmp_path / "denoised").glob("*.wav"))) == 4 and len(list((tmp_path / "edited").iterdir())) == 2
    out = capsys.readouterr().out
    assert out.count("$ python benchmarks/tts_quality.py") == 4 and "Intelligibility" in out and "Denoising" in out
    # The wavs of a synthesize.py folder are scored as they are; only the figures asked for are measured.
    again = tts_quality.main([*args(setup, tmp_path / "again"), f"generated={tmp_path / 'generated'}",
                              "parts=[intelligibility]", "speaker=null"])
    assert set(again) == {"command", "settings", "intelligibility"}
    assert again["intelligibility"]["per_lang"] == report["intelligibility"]["per_lang"]


def test_quality_bad_inputs_are_one_line(setup: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="input not found"):
        tts_quality.main([*args(setup, tmp_path), f"requests={tmp_path / 'none.jsonl'}"])
    (tmp_path / "bad.jsonl").write_text('{"text": "hallo", "lang": "deu_Latn"}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match="has no speaker, prompt, prompt_text, ref_audio"):
        tts_quality.main([*args(setup, tmp_path), f"requests={tmp_path / 'bad.jsonl'}"])
    with pytest.raises(SystemExit, match=r"speaker=.*not found"):
        tts_quality.main([*args(setup, tmp_path), f"speaker={tmp_path / 'nope'}"])
    with pytest.raises(SystemExit, match=r"no manifest\.jsonl"):
        tts_quality.main([*args(setup, tmp_path), f"generated={tmp_path}", "parts=[intelligibility]"])
    assert not (tmp_path / "tts_quality.json").exists()


def test_alignments_steer_edits_and_a_single_voice_has_no_similarity_floor(setup: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    rows = [json.loads(line) for line in setup["manifest"].read_text(encoding="utf-8").splitlines()]
    spec = MelSpec()
    aligned = tmp_path / "aligned.jsonl"
    for extra in (0, 1):  # right durations, then one frame too many for every recording
        lines = []
        for r in rows:
            units = char_units(r["text"], r["lang"])
            frames = spec.frames(int(1.6 * spec.sample_rate))
            durs = [frames // len(units)] * (len(units) - 1)
            lines.append({**r, "audio": str(setup["manifest"].parent / r["audio"]),
                          "units": units, "durations": [*durs, frames - sum(durs) + extra]})
        aligned.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        edit = tts_quality.main([*args(setup, tmp_path), f"alignments={aligned}", "parts=[editing]", "task_per_lang=1",
                                 "asr=null"])["editing"]
        assert (edit["n"], len(edit["failed"])) == ((1, 0) if extra == 0 else (0, 1))
    assert "summing to the audio's" in edit["failed"][0]["reason"]
    one_voice = tmp_path / "one_voice.jsonl"
    one_voice.write_text("".join(line + "\n" for line in setup["requests"].read_text(encoding="utf-8").splitlines()
                                 if '"spk0"' in line), encoding="utf-8")
    sim = tts_quality.main([*args(setup, tmp_path), f"requests={one_voice}", "parts=[similarity]"])["similarity"]
    assert "no other voice" in sim["error"]


def test_speed_writes_rtf_per_setting_and_the_nfe_plot(setup: dict[str, Path], tmp_path: Path) -> None:
    report = tts_speed.main([*args(setup, tmp_path, fast=False), f"model={setup['neural_bundle']}", "nfe=[2,4]",
                             "methods=[euler,midpoint]", "per_lang=2", "threads=1", "gl_iters=4"])
    saved = json.loads((tmp_path / "tts_speed.json").read_text(encoding="utf-8"))
    assert saved["settings"]["threads"] == 1 and report["settings"] == saved["settings"]
    rows = saved["rows"]
    assert [(r["nfe"], r["method"]) for r in rows] == [(2, "euler"), (4, "euler"), (2, "midpoint"), (4, "midpoint")]
    for r in rows:
        assert r["rtf_acoustic"] > 0 and list(r["vocoders"]) == ["vocos", "griffin_lim"]  # the bundle's first
        for v in r["vocoders"].values():
            assert v["rtf"] == pytest.approx(r["rtf_acoustic"] + v["rtf_vocoder"]) and v["rtf_vocoder"] > 0
            assert set(v) >= {"cer", "cer_difference_points", "gap_fraction"}
            assert v["within_rtf_target"] == (v["rtf"] <= 0.3)
    assert (tmp_path / "tts_speed.png").read_bytes()[:4] == b"\x89PNG"


def test_figures_draw_prompt_generated_and_ground_truth(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "figs" / "spec.png"
    shown = tts_figures.main([f"model={setup['bundle']}", f"requests={setup['requests']}", f"out={out}", "n=2",
                              *FAST])
    assert len(shown) == 2 and out.read_bytes()[:4] == b"\x89PNG"
    assert all(set(s) >= {"id", "text", "speaker", "prompt", "generated", "reference"} for s in shown)

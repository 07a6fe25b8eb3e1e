"""Long-form transcription: streamed windows, stitched log-probs, bounded memory, any format."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import Tensor

from speech.asr.config import CTCModelConfig, conformer
from speech.asr.ctc import greedy_decode
from speech.asr.infer import Transcriber
from speech.asr.longform import WindowConfig, stitched_log_probs, stream_audio, windows
from speech.asr.model import CTCModel
from speech.audio import SAMPLE_RATE, AudioError, decode_audio
from speech.encoders.wav2vec2 import wav2vec2_tiny
from tests.helpers import speechlike
from text.char_vocab import CharVocab

FRAME = 640  # samples per output frame, as the conformer's 4x subsampling of 10 ms hops


def local_model(waves: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """A stand-in CTC model whose frame j sees frames j-2..j+2 (zero beyond the input), like a small conv net."""
    lens = torch.tensor([len(w) // FRAME + 1 for w in waves])
    out = torch.zeros(len(waves), int(lens.max()), 5)
    for i, w in enumerate(waves):
        x = torch.zeros(int(lens[i]) * FRAME)
        x[: len(w)] = torch.from_numpy(w)
        feats = x.view(-1, FRAME)[:, :5].T[None]  # [1, 5, T]: five samples per frame
        out[i, : lens[i]] = F.avg_pool1d(F.pad(feats, (2, 2)), 5, 1)[0].T
    return out.log_softmax(-1), lens


def test_stitched_log_probs_equal_one_shot_for_a_model_with_short_context() -> None:
    wave = speechlike(75)
    full, n = local_model([wave])
    cfg = WindowConfig(chunk_seconds=20, overlap_seconds=2, min_pause_seconds=0)
    stitched, samples = stitched_log_probs(stream_audio(wave), local_model, FRAME, cfg)
    assert samples == len(wave) and stitched.shape == (int(n[0]), 5)
    torch.testing.assert_close(stitched, full[0])
    # Without context past the cuts, the frames next to them differ: the test can tell.
    blind, _ = stitched_log_probs(stream_audio(wave), local_model, FRAME, WindowConfig(20, 0, min_pause_seconds=0))
    assert not torch.allclose(blind, full[0])


def test_windows_end_in_pauses_and_pause_frames_are_blank() -> None:
    wave = speechlike(70, pauses=True)
    cfg = WindowConfig(chunk_seconds=20, overlap_seconds=2)
    ws = list(windows(stream_audio(wave), FRAME, cfg))
    assert all(w.keep_to is not None for w in ws[:-1]) and ws[-1].keep_to is None
    for w in ws[:-1]:
        end = w.start + len(w.wave)
        assert np.abs(wave[end - FRAME : end]).max() == 0.0  # every cut falls in silence
    assert len(ws) >= 70 / 3.1 - 1  # one window per sentence-like stretch
    stitched, _ = stitched_log_probs(stream_audio(wave), local_model, FRAME, cfg, blank=0)
    full, n = local_model([wave])
    assert stitched.shape[0] == int(n[0])
    kept = stitched[:, 1:].isfinite().any(-1)
    assert (~kept).sum() > 0 and (stitched[~kept, 0] == 0).all()  # frames between windows: certain blank
    # Frames a window keeps see the same audio as in one pass, apart from the model's 2-frame reach.
    inner = kept & torch.cat([kept[2:], kept[-2:]]) & torch.cat([kept[:2], kept[:-2]])
    torch.testing.assert_close(stitched[inner], full[0][inner])


@pytest.mark.parametrize("pause", [0.0, 0.25])
def test_window_count_and_size_are_bounded(pause: float) -> None:
    cfg = WindowConfig(chunk_seconds=10, overlap_seconds=2, min_pause_seconds=pause, min_segment_seconds=1)
    ws = list(windows(stream_audio(speechlike(90, pauses=pause > 0)), FRAME, cfg))
    assert max(len(w.wave) for w in ws) <= (10 + 2) * SAMPLE_RATE
    assert len(ws) <= 90 / (10 * 2 / 3) + 1 if pause == 0 else len(ws) <= 90 / 1 + 1
    covered = [(w.keep_from, w.keep_to) for w in ws]
    assert all(a < b for a, b in covered[:-1]) and covered[0][0] == 0
    assert all(b <= c for (_, b), (c, _) in itertools.pairwise(covered))  # in order, never twice


@pytest.fixture(scope="module")
def tiny() -> Transcriber:
    torch.manual_seed(0)
    vocab = CharVocab(list("abcdefghij"))
    enc = conformer(d_model=32, num_layers=1, num_heads=2, conv_kernel=5)
    return Transcriber(CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=enc)), vocab)


def test_tiny_conformer_stitched_matches_one_shot_closely(tiny: Transcriber) -> None:
    wave = speechlike(75)
    full, n = tiny.log_probs([wave])
    full = full[0, : int(n[0])]
    stitched, _ = stitched_log_probs(stream_audio(wave), tiny.log_probs, tiny.frame_samples,
                                     WindowConfig(20, 4, min_pause_seconds=0))
    assert tiny.frame_samples == FRAME and stitched.shape == full.shape
    diff = (stitched - full).abs().mean()
    # Attention and feature normalisation see 20 s instead of 75 s; a one-frame misalignment is far worse.
    assert diff < 0.1
    assert diff < 0.5 * (full[1:] - full[:-1]).abs().mean()


def test_long_array_goes_window_by_window_with_timestamps(tiny: Transcriber) -> None:
    tiny.window = WindowConfig(chunk_seconds=8, overlap_seconds=2)
    try:
        wave = speechlike(30, pauses=True)
        row = tiny.transcribe([wave], timestamps="char")[0]
        assert isinstance(row, dict) and row["duration"] == pytest.approx(30, abs=0.01)
        times = [(w["start"], w["end"]) for w in row["words"]]
        assert all(0 <= s <= e <= 30 for s, e in times) and times == sorted(times)
        assert "".join(w["word"] for w in row["words"]) == row["text"].replace(" ", "")
        assert "".join(c["char"] for c in row["chars"]) == row["text"].replace(" ", "")
    finally:
        tiny.window = WindowConfig()


def test_very_long_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    def peak_bytes(minutes: int) -> int:
        path = tmp_path / f"{minutes}.wav"
        with sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
            for i in range(minutes * 2):
                f.write(speechlike(30, seed=i, pauses=True))
        tracemalloc.start()
        logp, samples = stitched_log_probs(stream_audio(path), local_model, FRAME, WindowConfig(30, 4))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert samples == minutes * 60 * SAMPLE_RATE and logp.shape[0] == samples // FRAME + 1
        return peak

    short, long = peak_bytes(1), peak_bytes(6)
    assert long < 1.25 * short, f"{short / 2**20:.1f} MiB for 1 min, {long / 2**20:.1f} MiB for 6 min"
    window = (30 + 4 / 2) * SAMPLE_RATE * 4  # one window's samples as float32
    assert long < 5 * window  # a few windows' worth, however long the file


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_ffmpeg_formats_and_resampling_stream_like_a_full_decode(tmp_path: Path) -> None:
    wave = speechlike(12)
    sf.write(tmp_path / "a44.wav", np.stack([wave, wave], 1), 44_100)  # stereo at another rate
    sf.write(tmp_path / "a.wav", wave, SAMPLE_RATE)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "a.wav"), str(tmp_path / "a.mp3")], check=True)
    for name in ("a44.wav", "a.mp3"):
        streamed = np.concatenate(list(stream_audio(tmp_path / name, block_seconds=1.0)))
        whole = decode_audio(tmp_path / name)
        assert abs(len(streamed) - len(whole)) <= 2000, name  # decoders pad mp3 edges differently
        k = min(len(streamed), len(whole)) - 2000
        assert np.abs(streamed[1000:k] - whole[1000:k]).mean() < 0.01, name
    (tmp_path / "bad.mp3").write_bytes(b"\x00" * 3000)
    with pytest.raises(AudioError, match=r"bad\.mp3: unreadable"):
        list(stream_audio(tmp_path / "bad.mp3"))
    sf.write(tmp_path / "silent.wav", np.zeros(40 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="silent"):
        list(stream_audio(tmp_path / "silent.wav"))


def test_long_transcript_cut_inside_a_word_keeps_the_word_whole() -> None:
    torch.manual_seed(0)
    vocab = CharVocab(list("abc"))
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=wav2vec2_tiny(num_layers=1),
                                    encoder_type="wav2vec2"))
    transcriber = Transcriber(model, vocab, decoder="greedy")
    # 30 s of one space-free "word": every decode-piece cut falls inside it, between characters
    ids = [vocab.blank_id if t % 3 else vocab.index["abc"[(t // 3) % 3]] for t in range(1_500)]
    logp = torch.full((len(ids), len(vocab)), -20.0)
    logp[torch.arange(len(ids)), torch.tensor(ids)] = 0.0
    whole = greedy_decode(logp[None], torch.tensor([len(ids)]), vocab)[0]
    assert " " not in whole and len(whole) == 500
    assert transcriber.transcript(logp, None)["text"] == whole
    ids[700:706] = [vocab.blank_id, vocab.index[" "], vocab.blank_id] * 2  # a word gap where the cut will go
    logp = torch.full((len(ids), len(vocab)), -20.0)
    logp[torch.arange(len(ids)), torch.tensor(ids)] = 0.0
    assert transcriber.transcript(logp, None)["text"] == greedy_decode(logp[None], torch.tensor([len(ids)]), vocab)[0]

"""speech.audio: any common format in, 16 kHz mono float32 out, or an AudioError naming file and reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech.audio import SAMPLE_RATE, AudioError, audio_duration, decode_audio, load_audio, write_audio


def _tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _stereo_wav(path: Path, seconds: float = 1.0, sr: int = 44_100) -> np.ndarray:
    left = _tone(seconds, sr, 440.0, 0.6)
    right = _tone(seconds, sr, 440.0, 0.2)
    sf.write(path, np.stack([left, right], axis=1), sr, subtype="PCM_16")
    return (left + right) / 2


def _assert_16k_mono(wav: np.ndarray, expected_samples: int) -> None:
    assert isinstance(wav, np.ndarray)
    assert wav.dtype == np.float32
    assert wav.ndim == 1
    assert abs(wav.size - expected_samples) <= 1, (wav.size, expected_samples)
    assert wav.flags["C_CONTIGUOUS"]


def _assert_error(excinfo: pytest.ExceptionInfo[AudioError], path: Path | str, *reason_words: str) -> None:
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    assert excinfo.value.path == str(path)
    for word in reason_words:
        assert word.lower() in msg.lower(), f"{word!r} not in {msg!r}"


# ---------------------------------------------------------------- good inputs


def test_stereo_44k_wav_becomes_16k_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    _stereo_wav(path, seconds=1.5)
    wav = load_audio(path)
    _assert_16k_mono(wav, round(1.5 * SAMPLE_RATE))
    # Channels are averaged (not just the left one taken): amplitude ~ (0.6 + 0.2) / 2.
    assert 0.35 < float(np.abs(wav).max()) < 0.45
    # The 440 Hz tone survives resampling: dominant FFT bin is at 440 Hz.
    spectrum = np.abs(np.fft.rfft(wav))
    freqs = np.fft.rfftfreq(wav.size, 1 / SAMPLE_RATE)
    assert abs(freqs[spectrum.argmax()] - 440.0) < 2.0


def test_flac_8k_is_upsampled(tmp_path: Path) -> None:
    path = tmp_path / "speech.flac"
    sf.write(path, _tone(0.75, 8_000, 300.0), 8_000, format="FLAC")
    wav = load_audio(path)
    _assert_16k_mono(wav, round(0.75 * SAMPLE_RATE))
    assert float(np.abs(wav).max()) == pytest.approx(0.5, abs=0.05)


def test_16k_mono_wav_passes_through_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    tone = _tone(0.5, SAMPLE_RATE)
    sf.write(path, tone, SAMPLE_RATE, subtype="FLOAT")
    wav = load_audio(path)
    np.testing.assert_array_equal(wav, tone)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg command-line tool not installed")
def test_mp3_made_by_ffmpeg(tmp_path: Path) -> None:
    src = tmp_path / "src.wav"
    _stereo_wav(src, seconds=2.0)
    mp3 = tmp_path / "clip.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-b:a", "128k", str(mp3)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    wav = load_audio(mp3)
    assert wav.dtype == np.float32 and wav.ndim == 1
    # MP3 adds encoder delay/padding (a few ms), so allow a small slack around 2 s.
    assert abs(wav.size / SAMPLE_RATE - 2.0) < 0.1, wav.size
    assert 0.3 < float(np.abs(wav).max()) < 0.5
    # Bytes of the same MP3 decode to the same length.
    from_bytes = decode_audio(mp3.read_bytes())
    assert abs(from_bytes.size - wav.size) <= 0.05 * SAMPLE_RATE


def test_decode_from_bytes_matches_file(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    _stereo_wav(path, seconds=1.0)
    from_file = load_audio(path)
    from_bytes = decode_audio(path.read_bytes())
    _assert_16k_mono(from_bytes, SAMPLE_RATE)
    np.testing.assert_allclose(from_bytes, from_file, atol=1e-6)


def test_decode_flac_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    sf.write(path, _tone(0.3, 22_050), 22_050, format="FLAC")
    _assert_16k_mono(decode_audio(path.read_bytes()), round(0.3 * SAMPLE_RATE))


def test_custom_sample_rate(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, _tone(1.0, 44_100), 44_100)
    assert abs(load_audio(path, sample_rate=8_000).size - 8_000) <= 1


def test_audio_duration_from_header(tmp_path: Path) -> None:
    wav_path = tmp_path / "a.wav"
    _stereo_wav(wav_path, seconds=1.25)
    assert audio_duration(wav_path) == pytest.approx(1.25, abs=1e-4)
    flac_path = tmp_path / "b.flac"
    sf.write(flac_path, _tone(0.4, 8_000), 8_000, format="FLAC")
    assert audio_duration(flac_path) == pytest.approx(0.4, abs=1e-4)


def test_audio_duration_of_bad_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio at all\n" * 10)
    with pytest.raises(AudioError) as excinfo:
        audio_duration(path)
    _assert_error(excinfo, path, "unreadable")


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_write_audio_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "sub" / f"out{suffix}"
    tone = _tone(0.5, SAMPLE_RATE, amp=0.3)
    write_audio(path, tone)
    info = sf.info(str(path))
    assert info.format == suffix.lstrip(".").upper()
    assert info.subtype == "PCM_16"
    assert info.samplerate == SAMPLE_RATE and info.channels == 1
    back = load_audio(path)
    np.testing.assert_allclose(back, tone, atol=1.0 / 32768 + 1e-6)
    # Atomic write leaves no temporary sibling behind.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_allow_silence_returns_zeros(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(SAMPLE_RATE // 2, dtype=np.float32), SAMPLE_RATE)
    wav = load_audio(path, allow_silence=True)
    assert wav.size == SAMPLE_RATE // 2 and not wav.any()


# ---------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "not found")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "empty", "0 bytes")


def test_empty_bytes() -> None:
    with pytest.raises(AudioError) as excinfo:
        decode_audio(b"", name="upload.wav")
    _assert_error(excinfo, "upload.wav", "empty")


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "folder.wav"
    path.mkdir()
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "directory")


def test_header_only_wav(tmp_path: Path) -> None:
    full = tmp_path / "full.wav"
    sf.write(full, _tone(0.5, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    header = full.read_bytes()[:44]
    assert header[:4] == b"RIFF" and header[36:40] == b"data"  # the canonical 44-byte PCM header
    path = tmp_path / "header_only.wav"
    path.write_bytes(header)
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    msg = str(excinfo.value).lower()
    assert str(path) in str(excinfo.value)
    assert any(w in msg for w in ("no audio samples", "truncated", "unreadable")), msg


def test_wav_cut_mid_header(tmp_path: Path) -> None:
    full = tmp_path / "full.wav"
    sf.write(full, _tone(0.5, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    path = tmp_path / "cut.wav"
    path.write_bytes(full.read_bytes()[:20])
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "unreadable")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "readme.wav"
    path.write_text("This is a transcript, not a recording.\n" * 50, encoding="utf-8")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "unreadable")


def test_text_bytes() -> None:
    with pytest.raises(AudioError) as excinfo:
        decode_audio(b"hello world, definitely not audio" * 20)
    _assert_error(excinfo, "<bytes>", "unreadable")


def test_nan_float_wav(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    data = np.full(SAMPLE_RATE, np.nan, dtype=np.float32)
    sf.write(path, data, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "nan")


def test_single_inf_sample_in_resampled_wav(tmp_path: Path) -> None:
    path = tmp_path / "inf.wav"
    data = _tone(0.5, 44_100)
    data[100] = np.inf
    sf.write(path, data, 44_100, subtype="FLOAT")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "infinite")


def test_silent_file(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(SAMPLE_RATE, dtype=np.int16), SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "silent")


def test_too_short_file(tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    sf.write(path, _tone(0.01, 44_100), 44_100)  # 10 ms < the 50 ms minimum
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_error(excinfo, path, "too short")
    # The same file is fine once the minimum is lowered.
    assert abs(load_audio(path, min_seconds=0.005).size - 160) <= 1


def test_name_overrides_label(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError) as excinfo:
        decode_audio(path.read_bytes(), name="s3://bucket/silent.wav")
    _assert_error(excinfo, "s3://bucket/silent.wav", "silent")

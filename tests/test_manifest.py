"""datamodules.manifest: JSONL/TSV manifests with errors that name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamodules.manifest import ManifestError, read_manifest


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(*rows: dict[str, object]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# ---------------------------------------------------------------- JSONL


def test_jsonl_rows_and_relative_paths(tmp_path: Path) -> None:
    manifest = _write(
        tmp_path / "data" / "train.jsonl",
        _jsonl(
            {"audio": "clips/a.wav", "text": "привіт", "lang": "uk", "duration": 1.5},
            {"audio": "/abs/b.flac", "text": "नमस्ते", "lang": "hi", "speaker": "s1"},
        ),
    )
    rows = read_manifest(manifest)
    assert len(rows) == 2
    a, b = rows
    assert a["audio"] == str(tmp_path / "data" / "clips" / "a.wav")
    assert a["audio_raw"] == "clips/a.wav"
    assert a["text"] == "привіт" and a["lang"] == "uk"
    assert a["duration"] == 1.5 and isinstance(a["duration"], float)
    assert b["audio"] == "/abs/b.flac" and b["audio_raw"] == "/abs/b.flac"
    assert b["speaker"] == "s1"
    assert "duration" not in b


def test_relative_to_manifest_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _write(tmp_path / "m" / "x.jsonl", _jsonl({"audio": "../audio/a.wav"}))
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    (row,) = read_manifest(manifest)
    assert Path(row["audio"]).resolve() == (tmp_path / "audio" / "a.wav").resolve()
    assert row["audio_raw"] == "../audio/a.wav"


def test_resolve_paths_false_keeps_paths(tmp_path: Path) -> None:
    manifest = _write(tmp_path / "m.jsonl", _jsonl({"audio": "a.wav"}))
    (row,) = read_manifest(manifest, resolve_paths=False)
    assert row["audio"] == "a.wav" and row["audio_raw"] == "a.wav"


def test_jsonl_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "\n"
        '{"audio": "a.wav", "text": "one"}\n'
        "   \n"
        "   # indented comment\n"
        '{"audio": "b.wav", "text": "two"}\n'
        "\n"
    )
    rows = read_manifest(_write(tmp_path / "m.jsonl", text))
    assert [r["text"] for r in rows] == ["one", "two"]


def test_jsonl_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"audio": "a.wav"}\r\n{"audio": "b.wav"}\r\n')
    assert [r["audio_raw"] for r in read_manifest(path)] == ["a.wav", "b.wav"]


def test_broken_json_names_file_and_line(tmp_path: Path) -> None:
    text = (
        "# header comment\n"  # line 1
        '{"audio": "a.wav"}\n'  # line 2
        "\n"  # line 3
        '{"audio": "b.wav"}\n'  # line 4
        '{"audio": "c.wav", "text": "oops"\n'  # line 5: missing brace
        '{"audio": "d.wav"}\n'  # line 6
    )
    path = _write(tmp_path / "broken.jsonl", text)
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    msg = str(excinfo.value)
    assert f"{path}:5:" in msg, msg
    assert "invalid json" in msg.lower()


def test_json_not_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", _jsonl({"audio": "a.wav"}) + '["b.wav", "text"]\n')
    with pytest.raises(ManifestError, match=r":2: expected a JSON object") as excinfo:
        read_manifest(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("row", [{"text": "no audio"}, {"audio": "", "text": "empty audio"}])
def test_missing_audio_field(tmp_path: Path, row: dict[str, str]) -> None:
    path = _write(tmp_path / "m.jsonl", _jsonl({"audio": "a.wav"}, {"audio": "b.wav"}, row))
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    msg = str(excinfo.value)
    assert f"{path}:3:" in msg and "audio" in msg and "missing" in msg


@pytest.mark.parametrize("duration", ["long", None, [1.0]])
def test_non_numeric_duration(tmp_path: Path, duration: object) -> None:
    path = _write(tmp_path / "m.jsonl", _jsonl({"audio": "a.wav", "duration": duration}))
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    msg = str(excinfo.value)
    assert f"{path}:1:" in msg and "duration" in msg and "not a number" in msg


def test_numeric_string_duration_is_converted(tmp_path: Path) -> None:
    (row,) = read_manifest(_write(tmp_path / "m.jsonl", _jsonl({"audio": "a.wav", "duration": "2.25"})))
    assert row["duration"] == 2.25


def test_non_string_text_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", _jsonl({"audio": "a.wav", "text": 42}))
    with pytest.raises(ManifestError, match=r":1: field 'text' must be a string"):
        read_manifest(path)


def test_missing_manifest(tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    assert str(path) in str(excinfo.value) and "not found" in str(excinfo.value)


def test_manifest_error_is_value_error() -> None:
    assert issubclass(ManifestError, ValueError)


# ---------------------------------------------------------------- TSV


def test_tsv_rows(tmp_path: Path) -> None:
    text = (
        "audio\ttext\tlang\tduration\n"
        "clips/a.wav\tciao, l'uomo\tit\t1.25\n"
        "\n"
        "# skipped\tcomment\n"
        "/abs/b.wav\tمرحبا\tar\t3\n"
    )
    rows = read_manifest(_write(tmp_path / "d" / "m.tsv", text))
    assert len(rows) == 2
    assert rows[0] == {
        "audio": str(tmp_path / "d" / "clips" / "a.wav"),
        "audio_raw": "clips/a.wav",
        "text": "ciao, l'uomo",
        "lang": "it",
        "duration": 1.25,
    }
    assert rows[1]["audio"] == "/abs/b.wav" and rows[1]["text"] == "مرحبا" and rows[1]["duration"] == 3.0


def test_tsv_quotes_are_literal(tmp_path: Path) -> None:
    text = 'audio\ttext\n"a.wav"\the said "hi"\n'
    (row,) = read_manifest(_write(tmp_path / "m.tsv", text), resolve_paths=False)
    assert row["audio"] == '"a.wav"' and row["text"] == 'he said "hi"'


def test_tsv_wrong_field_count(tmp_path: Path) -> None:
    text = "audio\ttext\tlang\na.wav\tone\ten\n\nb.wav\ttwo\n"  # line 4 has 2 fields
    path = _write(tmp_path / "m.tsv", text)
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    msg = str(excinfo.value)
    assert f"{path}:4:" in msg and "expected 3" in msg and "got 2" in msg


def test_tsv_non_numeric_duration(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.tsv", "audio\tduration\na.wav\t1.0\nb.wav\tn/a\n")
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    msg = str(excinfo.value)
    assert f"{path}:3:" in msg and "not a number" in msg


def test_tsv_header_without_audio(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.tsv", "path\ttext\na.wav\thi\n")
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(path)
    assert f"{path}:1:" in str(excinfo.value) and "audio" in str(excinfo.value)


def test_empty_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.tsv", "")
    with pytest.raises(ManifestError, match=r":1: TSV header"):
        read_manifest(path)


def test_empty_jsonl_is_empty_list(tmp_path: Path) -> None:
    assert read_manifest(_write(tmp_path / "m.jsonl", "# nothing yet\n\n")) == []

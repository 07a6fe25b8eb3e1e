"""The web app's parts without a browser: discovery, the tab registry, progress, messages, the command line."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio")

import gradio as gr

from common.runner import compose
from tests.helpers import ROOT, load_script
from tests.test_tts_synth import write_model
from tests.webapp_data import write_asr
from webapp.app import AppSettings, allowed_paths, build_app
from webapp.discover import RETRIEVAL_INDEX, discover
from webapp.tabs import TABS, tab
from webapp.ui import message, user_errors


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder as users keep one: models nested at several depths, a bundle, an index, broken and foreign
    directories."""
    root = tmp_path_factory.mktemp("models")
    write_asr(root / "asr" / "tiny")
    tts = write_model(root / "tts")  # holds duration/ (a tts_duration model): part of the bundle, not a model
    (root / "voices").mkdir()
    (root / "voices" / "bundle.json").write_text(json.dumps({"type": "tts_bundle", "acoustic": str(tts)}))
    index = root / "search" / "idx"
    index.mkdir(parents=True)
    (index / "manifest.json").write_text("{}")
    (index / "ids.txt").write_text("")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    (root / "future").mkdir()
    (root / "future" / "config.json").write_text(json.dumps({"model_type": "no_such_family_yet"}))
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no model here")
    return root


def test_discovery_keys_each_directory_and_skips_broken_ones_with_their_reason(folder: Path) -> None:
    found = discover(folder)
    assert {(f.name, f.kind) for f in found.found} == {
        ("asr/tiny", "ctc_conformer"), ("tts", "tts_flow"), ("voices", "tts_bundle"), ("search/idx", RETRIEVAL_INDEX)}
    assert set(found.skipped) == {str(folder / "broken"), str(folder / "future")}
    assert "broken config" in found.skipped[str(folder / "broken")]
    assert "no_such_family_yet" in found.skipped[str(folder / "future")]
    assert [f.name for f in discover(folder, depth=1).found] == ["tts", "voices"]  # asr/tiny is two levels down
    with pytest.raises(FileNotFoundError, match="no such folder"):
        discover(folder / "missing")


def test_every_registered_tab_builds_from_its_module_and_keys_are_unique() -> None:
    assert len({t.key for t in TABS}) == len(TABS)
    assert len({k for t in TABS for k in t.kinds}) == sum(len(t.kinds) for t in TABS)  # one tab per kind
    for spec in TABS:
        params = list(inspect.signature(spec.builder()).parameters)
        assert params == ["found", "settings"], spec.module
    assert tab("search").kinds == (RETRIEVAL_INDEX,)
    assert tab("trace").kinds == ("source_tracer",) and tab("sign").kinds == ("sign_translator",)
    with pytest.raises(KeyError, match="no tab 'nope'"):
        tab("nope")


def test_only_tabs_with_models_are_built(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "asr").mkdir()
    write_asr(tmp_path / "asr" / "m")
    built = build_app(AppSettings(tmp_path))
    assert [t.key for t in built.tabs] == ["transcribe"]
    assert "tab-synthesize" not in str(built.blocks.config) and "tab-transcribe" in str(built.blocks.config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="nothing the app serves was found"):
        build_app(AppSettings(tmp_path / "empty"))


def test_the_page_may_show_the_folders_that_found_indexes_were_built_from(tmp_path: Path) -> None:
    media = tmp_path / "photos"
    media.mkdir()
    index = tmp_path / "models" / "idx"
    index.mkdir(parents=True)
    (index / "manifest.json").write_text(json.dumps({"format_version": 1, "source_root": str(media)}))
    (index / "ids.txt").write_text("")
    settings = AppSettings(tmp_path / "models")
    assert str(media.resolve()) in allowed_paths(settings, discover(settings.models))
    assert str(media.resolve()) not in allowed_paths(settings)


def test_synthesis_reports_progress_once_per_solver_step() -> None:
    synthesize = importlib.import_module("webapp.tabs.synthesize")
    seen: list[tuple[float, str]] = []

    class Model:
        def register_forward_hook(self, hook: Any) -> Any:
            self.hook = hook
            return self

        def remove(self) -> None:
            self.hook = None

    class Synth:
        model = Model()

    synth = Synth()
    with synthesize.count_steps(synth, 4, lambda frac, desc: seen.append((frac, desc))):
        for _ in range(4):
            synth.model.hook()
    assert [d for _, d in seen] == [f"step {i} of 4" for i in range(1, 5)]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == pytest.approx(0.9)
    assert synth.model.hook is None  # the hook is gone after the request


def test_bad_input_becomes_a_message_naming_the_upload_not_its_temporary_path() -> None:
    tmp = "/tmp/gradio/" + "ab12" * 16 + "/voice.wav"
    shown = message(ValueError(f"prompt {tmp}: too short (0.300 s < 1.0 s)"))
    assert shown == "prompt voice.wav: too short (0.300 s < 1.0 s)"

    @user_errors
    def handler(kind: str) -> None:
        raise {"input": ValueError("bad.wav: unreadable audio"), "bug": ZeroDivisionError("oops")}[kind]

    with pytest.raises(gr.Error, match=r"bad\.wav: unreadable audio"):
        handler("input")
    with pytest.raises(gr.Error, match=r"internal error \(ZeroDivisionError: oops\)"):
        handler("bug")


def test_the_command_line_composes_and_refuses_a_folder_without_models(tmp_path: Path) -> None:
    cfg = compose("app", [f"models={tmp_path}", "port=7999", "media=[a,b]"], ROOT / "configs")
    assert (cfg.host, cfg.port, list(cfg.media)) == ("127.0.0.1", 7999, ["a", "b"])
    script = load_script("app")
    assert script.settings(cfg).media == ["a", "b"]
    with pytest.raises(SystemExit, match=r"app: models=.*nothing the app serves"):
        script.run(cfg, block=False)


def test_a_midi_file_becomes_a_piano_roll_and_a_broken_one_a_named_error(tmp_path: Path) -> None:
    import mido

    from webapp.score import midi_notes, piano_roll

    mid = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for pitch, beats in ((60, 1.0), (64, 0.5), (67, 2.0)):  # C, E, G one after another
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=int(beats * 96)))
    mid.save(tmp_path / "tune.mid")
    notes = midi_notes(tmp_path / "tune.mid")
    assert [(n.pitch, n.start, n.length) for n in notes] == [(60, 0.0, 1.0), (64, 1.0, 0.5), (67, 1.5, 2.0)]
    png = piano_roll(notes, "tune.mid", tmp_path / "roll.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.mid").write_bytes(b"MThd nonsense")
    with pytest.raises(ValueError, match=r"bad\.mid: unreadable MIDI"):
        midi_notes(tmp_path / "bad.mid")

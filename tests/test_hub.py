"""The shared model hub: every family's directories save and load through it, old directories included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from common import hub
from common.registry import Registry, UnknownName
from speech.asr.adapters import load_adapted
from speech.asr.hub import from_pretrained as load_ctc
from speech.asr.lid import load_lid, save_lid
from speech.asr.llm.hub import from_pretrained as load_llm
from speech.ssl.hub import load_pretrained as load_ssl
from text.sentence_encoder import from_pretrained as load_sentence_encoder

LEGACY = Path(__file__).parent / "fixtures" / "legacy_models"
"""Written by the code before the hub (tests/fixtures/legacy_models/make.py at f3be094)."""
REFERENCE = json.loads((LEGACY / "reference.json").read_text())
KINDS = ["ctc_conformer", "ctc_wav2vec2", "ctc_adapted", "asr_llm", "sentence_encoder", "wav2vec2"]
DIRS = {"wav2vec2": "ssl_wav2vec2"}


def legacy(kind: str) -> Path:
    return LEGACY / DIRS.get(kind, kind)


def reference_output(kind: str, model: torch.nn.Module) -> float:
    """The same forward pass that make.py recorded."""
    torch.manual_seed(1)
    wave, lens = torch.randn(1, 8000), torch.tensor([8000])
    with torch.no_grad():
        if kind == "ctc_adapted":
            return float(model(wave, lens, ["tur_Latn"])[0].float().clamp_min(-1e4).sum())
        if kind == "sentence_encoder":
            ids = torch.tensor([[5, 6, 7, 8]])
            return float(model(ids, torch.ones_like(ids, dtype=torch.bool)).sum())
        return float(model(wave, lens)[0].sum())


@pytest.mark.parametrize("kind", KINDS)
def test_directories_written_before_the_hub_still_load(kind: str) -> None:
    loaded = hub.load_pretrained(legacy(kind))
    assert loaded.config["model_type"] == kind and not loaded.model.training
    if kind in REFERENCE:
        assert reference_output(kind, loaded.model) == pytest.approx(REFERENCE[kind], rel=1e-5)
    # The family functions return the same weights.
    family = {
        "ctc_conformer": lambda d: load_ctc(d)[0], "ctc_wav2vec2": lambda d: load_ctc(d)[0],
        "ctc_adapted": lambda d: load_adapted(d)[0], "asr_llm": load_llm, "wav2vec2": load_ssl,
        "sentence_encoder": lambda d: load_sentence_encoder(d)[0],
    }[kind](legacy(kind))
    for (k, a), (_, b) in zip(loaded.model.state_dict().items(), family.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("kind", KINDS)
def test_save_then_load_gives_the_same_model_and_side_files(kind: str, tmp_path: Path) -> None:
    first = hub.load_pretrained(legacy(kind))
    config = {k: v for k, v in first.config.items() if k not in ("model_type", "format_version", "files")}
    out = hub.save_pretrained(first.model, tmp_path / kind, model_type=kind, config=config, files=first.files)
    again = hub.load_pretrained(out)
    written = json.loads((out / "config.json").read_text())
    assert written["format_version"] == hub.FORMAT_VERSION and written["model_type"] == kind
    assert set(written.get("files", {})) == set(first.files)
    for (k, a), (_, b) in zip(first.model.state_dict().items(), again.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    for role, obj in first.files.items():
        assert type(again.files[role]) is type(obj)
    if kind in REFERENCE:
        assert reference_output(kind, again.model) == pytest.approx(REFERENCE[kind], rel=1e-5)


def test_a_lid_head_written_before_the_hub_loads_and_saves_beside_its_model(tmp_path: Path) -> None:
    head = load_lid(LEGACY / "ctc_conformer_lid")
    assert head.cfg.langs == ["eng_Latn", "deu_Latn"]
    shutil.copytree(LEGACY / "ctc_conformer", tmp_path / "m")
    save_lid(head, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "lid.json").read_text())["model_type"] == "lid_head"
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "ctc_conformer"
    x, lens = torch.randn(2, 9, 16), torch.tensor([9, 4])
    torch.testing.assert_close(load_lid(tmp_path / "m")(x, lens), head(x, lens))


def broken_copy(tmp_path: Path, kind: str = "ctc_conformer") -> Path:
    d = tmp_path / kind
    shutil.copytree(legacy(kind), d)
    return d


def test_an_unknown_model_type_names_the_directory_and_the_known_types(tmp_path: Path) -> None:
    d = broken_copy(tmp_path)
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "model_type": "speech_to_pizza"}))
    with pytest.raises(hub.ModelDirError, match=rf"{d}/config.json: unknown model_type 'speech_to_pizza'.*ctc_"):
        hub.load_pretrained(d)


def test_missing_weights_broken_config_and_wrong_shapes_each_get_one_clear_message(tmp_path: Path) -> None:
    d = broken_copy(tmp_path)
    (d / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{d}: not a model directory \(model.safetensors is missing\)"):
        hub.load_pretrained(d)
    d = broken_copy(tmp_path / "b")
    (d / "config.json").write_text('{"model_type": "ctc_conformer", ')
    with pytest.raises(hub.ModelDirError, match=rf"{d}/config.json: broken config"):
        hub.load_pretrained(d)
    d = broken_copy(tmp_path / "c")
    config = json.loads((d / "config.json").read_text())
    del config["vocab_size"]
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(hub.ModelDirError, match=r"broken config for model_type 'ctc_conformer' \('vocab_size'\)"):
        hub.load_pretrained(d)
    d = broken_copy(tmp_path / "d")
    config = json.loads((d / "config.json").read_text())
    config["encoder"]["d_model"] = 24
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(hub.ModelDirError, match=r"model.safetensors: weights don't fit the config"):
        hub.load_pretrained(d)
    d = broken_copy(tmp_path / "e")
    (d / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(hub.ModelDirError, match=r"model.safetensors: unreadable weights"):
        hub.load_pretrained(d)
    d = broken_copy(tmp_path / "f")
    (d / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab.json is missing"):
        hub.load_pretrained(d)
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        hub.load_pretrained(tmp_path / "nowhere")


def test_a_directory_from_a_newer_suite_or_of_another_family_is_refused(tmp_path: Path) -> None:
    d = broken_copy(tmp_path)
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "format_version": hub.FORMAT_VERSION + 1}))
    with pytest.raises(hub.ModelDirError, match="newer than this suite's"):
        hub.load_pretrained(d)
    with pytest.raises(hub.ModelDirError, match=r"model_type 'sentence_encoder' is not 'ctc_conformer'"):
        load_ctc(legacy("sentence_encoder"))


def test_saving_needs_every_side_file_of_the_type(tmp_path: Path) -> None:
    model = hub.load_pretrained(legacy("ctc_conformer")).model
    with pytest.raises(ValueError, match=r"side files \['vocab'\], got \[\]"):
        hub.save_pretrained(model, tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_registry_refuses_a_second_entry_and_names_the_known_ones() -> None:
    reg: Registry[int] = Registry("colour")
    reg.add("red", 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("red", 2)
    with pytest.raises(UnknownName, match=r"here: unknown colour 'blue'; known: red"):
        reg.get("blue", where="here")
    assert "ctc_conformer" in hub.MODEL_TYPES and "sentence_encoder" in hub.MODEL_TYPES.names()


def test_the_fallback_plugin_list_matches_the_entry_points_in_pyproject() -> None:
    """A checkout that was never pip-installed must still find every family's registrations."""
    import tomllib

    from common.registry import FALLBACK_PLUGINS

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    declared = project["project"]["entry-points"]["polyglot_suite.plugins"].values()
    assert sorted(declared) == sorted(FALLBACK_PLUGINS)

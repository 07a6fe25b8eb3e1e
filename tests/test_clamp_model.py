"""CLaMP 3: the symbolic stage learns (held-out text->ABC MRR above chance), the audio stage freezes what it must, a
model directory round-trips, ``MusicEncoder`` embeds every modality, and retrieval skips bad files by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.music import MusicDataModule, read_rows
from music.clamp.config import clamp3_tiny
from music.clamp.encoder import MusicEncoder
from music.clamp.evaluation import chance_mrr, retrieval_table
from music.clamp.module import ClampModule
from tests.clamp_data import TINY_NET, have_renderers, write_music_corpus

pytestmark = pytest.mark.skipif(not have_renderers(audio=True), reason="abc2midi / fluidsynth are not installed")


def fit(module: ClampModule, dm: MusicDataModule, steps: int) -> None:
    L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0).fit(module, datamodule=dm)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_music_corpus(tmp_path_factory.mktemp("music"), n_train=48, n_test=16)


@pytest.fixture(scope="module")
def audio_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_music_corpus(tmp_path_factory.mktemp("music_audio"), n_train=8, n_test=4, audio=True, seed=1)


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, float]:
    """The symbolic stage after a few seconds, exported; held-out text->ABC MRR before and after."""
    L.seed_everything(0)  # masks, batches and the description language drawn per tune
    out = tmp_path_factory.mktemp("symbolic")
    module = ClampModule(clamp3_tiny(**TINY_NET), tokenizer=str(out / "tok.model"),
                         train_manifest=str(corpus / "train.jsonl"), vocab_size=300, mlm_only_steps=20, lr=3e-3,
                         warmup_steps=10)
    test = read_rows(corpus / "test.jsonl")
    before = retrieval_table(MusicEncoder(module.net, module.tokenizer).collect(test))["text_abc/mean/mrr"]
    fit(module, MusicDataModule(str(corpus / "train.jsonl"), str(corpus / "dev.jsonl"), batch_size=16), 170)
    model_dir = module.export(out / "model")
    after = retrieval_table(MusicEncoder(module.net.eval(), module.tokenizer).collect(test))["text_abc/mean/mrr"]
    return model_dir, before, after


def test_symbolic_stage_learns_held_out_text_to_abc(trained: tuple[Path, float, float]) -> None:
    _, before, after = trained
    chance = chance_mrr(16)
    # ~0.45 after 170 steps (3 seeds: 0.43-0.49) against chance 0.21: ABC's K: and M: fields read as the words
    assert after > chance + 0.15 and after > before + 0.1, (before, after, chance)


def test_round_trip_and_embed_every_modality(trained: tuple[Path, float, float], audio_corpus: Path,
                                             tmp_path: Path) -> None:
    import music21

    model_dir, _, _ = trained
    enc = MusicEncoder.from_pretrained(model_dir, audio_cache=tmp_path / "cache")
    abc = audio_corpus / "abc" / "t000.abc"
    music21.converter.parse(str(abc)).write("musicxml", fp=str(tmp_path / "t000.musicxml"))
    inputs: list[str | Path] = [abc, tmp_path / "t000.musicxml", audio_corpus / "midi" / "t000.mid",
                                audio_corpus / "audio" / "t000.wav", "A jig in D major."]
    vecs = enc.embed(inputs)
    assert vecs.shape == (5, enc.dim) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(enc.embed(str(abc)), vecs[0], atol=1e-6)  # one input gives one vector
    again = MusicEncoder.from_pretrained(model_dir)  # a second load gives the same vectors
    assert np.allclose(again.embed(inputs[:3] + inputs[4:]), vecs[[0, 1, 2, 4]], atol=1e-5)
    assert list((tmp_path / "cache").glob("*.npy"))  # the audio features were cached


def test_bad_files_are_named_and_skipped(trained: tuple[Path, float, float], tmp_path: Path) -> None:
    enc = MusicEncoder.from_pretrained(trained[0])
    (tmp_path / "bad.abc").write_text("X:1\nT:no key\n|abc|\n", encoding="utf-8")
    (tmp_path / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    out = enc.embed_files([tmp_path / "bad.abc", tmp_path / "bad.mid", tmp_path / "bad.wav", tmp_path / "gone.mid"])
    assert [str(o).split(": ", 1)[0] for o in out] == [str(tmp_path / n) for n in ("bad.abc", "bad.mid", "bad.wav",
                                                                                    "gone.mid")]
    assert "no K:" in str(out[0]) and "broken MIDI" in str(out[1]) and "unreadable audio" in str(out[2])
    assert "no such file" in str(out[3])
    with pytest.raises(ValueError, match=r"bad\.abc: not ABC notation"):
        enc.embed(tmp_path / "bad.abc")


def _params(module: ClampModule, prefix: str) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.net.named_parameters() if n.startswith(prefix)}


@pytest.mark.parametrize("paired", [False, True])
def test_audio_stage_freezes_the_symbolic_branch_and_text(trained: tuple[Path, float, float], audio_corpus: Path,
                                                           paired: bool, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="init_encoder"):
        ClampModule(clamp3_tiny(**TINY_NET), stage="audio")
    module = ClampModule({}, stage="audio", init_encoder=str(trained[0]), pair_audio_symbolic=paired,
                         audio_cache=str(tmp_path / "cache"), lr=3e-3, warmup_steps=1)
    assert not any(p.requires_grad for n, p in module.net.named_parameters() if not n.startswith("audio"))
    assert all(p.requires_grad for n, p in module.net.named_parameters() if n.startswith("audio"))
    frozen = {**_params(module, "symbolic"), **_params(module, "text")}
    audio = _params(module, "audio.")
    dm = MusicDataModule(str(audio_corpus / "train.jsonl"), str(audio_corpus / "dev.jsonl"), batch_size=4,
                         modalities=["audio", "abc"])
    fit(module, dm, 4)
    assert not module.net.symbolic.training and not module.net.text.training  # frozen towers keep dropout off
    now = dict(module.net.named_parameters())
    assert all(torch.equal(now[n], p) for n, p in frozen.items())
    assert any(not torch.equal(now[n], p) for n, p in audio.items())
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 8  # every training recording, once


def test_retrieval_indexes_a_mixed_folder_and_reports_bad_files(trained: tuple[Path, float, float],
                                                                audio_corpus: Path, tmp_path: Path) -> None:
    from common.io import read_jsonl_lenient
    from common.retrieval.engine import Retriever
    from common.retrieval.folder import index_folder

    folder = tmp_path / "music"
    folder.mkdir()
    for sub, ext in (("abc", "abc"), ("midi", "mid"), ("audio", "wav")):
        for tid in ("t000", "t001"):
            shutil.copy(audio_corpus / sub / f"{tid}.{ext}", folder / f"{tid}.{ext}")
    (folder / "broken.abc").write_text("no music here\n", encoding="utf-8")
    report = index_folder(folder, tmp_path / "index", trained[0], progress=False)
    assert report.count == 6
    failed = {r["id"]: r["reason"] for r in read_jsonl_lenient(tmp_path / "index" / "failed.jsonl")}
    assert list(failed) == ["broken.abc"] and "no K: (key) header field" in failed["broken.abc"]
    r = Retriever.from_pretrained(tmp_path / "index")
    hits = r.search(["A jig in D major."], top_k=6)[0]
    assert len(hits) == 6 and {h for h, _ in hits} == {f"t00{i}.{e}" for i in (0, 1) for e in ("abc", "mid", "wav")}
    own = r.search(r.embed_file(folder / "t001.abc"), top_k=1)[0]
    assert own[0][0] == "t001.abc" and own[0][1] == pytest.approx(1.0, abs=1e-4)


def test_zero_shot_picks_the_nearest_prompt() -> None:
    from music.clamp.zeroshot import zero_shot_accuracy

    space = {"a jig": [1.0, 0.0], "a reel": [0.0, 1.0], "a jig tune": [1.0, 0.0], "a reel tune": [0.0, 1.0]}

    def embed_text(texts: list[str]) -> torch.Tensor:
        return torch.tensor([space[t] for t in texts])

    music = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    attrs: list[dict[str, Any]] = [{"genre": "jig"}, {"genre": "reel"}, {"genre": "reel"}, {}]
    got = zero_shot_accuracy(embed_text, music, attrs, "genre", {"genre": ["a {value}", "a {value} tune"]})
    assert got == {"accuracy": pytest.approx(2 / 3), "chance": pytest.approx(2 / 3), "classes": 2.0,
                   "recall/jig": 1.0, "recall/reel": 0.5}


def test_zero_shot_prompts_are_the_corpus_descriptions_in_each_language() -> None:
    from datamodules.corpus.music_text import LANGS
    from music.clamp.zeroshot import corpus_prompts

    assert set(corpus_prompts("genre", "jig", ["deu_Latn"])) <= {"Eine Jig.", "Zu hören ist eine Jig.",
                                                                 "Das ist eine Jig."}
    key = corpus_prompts("key", "D", ["eng_Latn"])  # every genre, every mode: the key alone decides
    assert len(key) == 7 * 4 and all("D" in p for p in key) and any("dorian" in p for p in key)
    assert len(corpus_prompts("meter", "6/8")) == 7 * len(LANGS)
    assert all("6/8" in p for p in corpus_prompts("meter", "6/8"))


def test_linear_probe_reads_an_attribute_from_frozen_embeddings(trained: tuple[Path, float, float], corpus: Path,
                                                                 tmp_path: Path) -> None:
    from tests.helpers import load_script

    out = tmp_path / "probe.json"
    got = load_script("clamp_probe").main([f"model={trained[0]}", "attribute=meter", f"train={corpus}/train.jsonl",
                                           f"test={corpus}/test.jsonl", f"output={out}", "audio_cache=null"])
    assert got["classes"] == 4 and got["test"] == 16
    assert got["accuracy"] > got["majority_baseline"] + 0.2  # the M: field is in every tune
    assert json.loads(out.read_text()) == got


def test_the_table_shows_each_language_the_bridge_and_zero_shot() -> None:
    from music.clamp.evaluation import Collector, format_table, retrieval_table, zero_shot

    torch.manual_seed(0)
    ids = [f"t{n}" for n in range(6)]
    music = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    c = Collector()
    for name in ("abc", "abc_bare", "midi", "audio", "text:eng_Latn", "text:deu_Latn"):
        c.add_named(name, ids, music if name != "audio" else music.flip(0))
    metrics = retrieval_table(c) | zero_shot(lambda texts: torch.randn(len(texts), 8), c,
                                              {i: {"genre": "jig" if n % 2 else "reel"} for n, i in enumerate(ids)})
    assert metrics["text_abc/eng_Latn/mrr"] == 1.0 and metrics["audio_abc/mrr"] < 1.0
    assert metrics["audio_abc/chance_mrr"] == pytest.approx(chance_mrr(6))
    assert {"zeroshot_abc/genre/eng_Latn/accuracy", "zeroshot_audio/genre/all/accuracy"} <= set(metrics)
    table = format_table(metrics, "test").splitlines()
    assert table[1].split() == ["target", "deu", "eng", "mean", "hit@1", "hit@10"]
    assert table[2].split()[:3] == ["abc", "1.000", "1.000"] and any(line.split()[0] == "audio_abc" for line in table)
    assert any(line.split()[:2] == ["abc_bare", "genre"] for line in table)
    assert max(len(line) for line in table) <= 120

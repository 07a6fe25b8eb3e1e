"""Few-shot language extension: frozen base, per-language routing, save/load, a second language, learning."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

from common.fit import FitSettings
from common.runner import compose_and_run
from datamodules.corpus.speech import SpeechCorpusConfig, build_speech_corpus
from speech.asr.adapters import AdaptedCTCModel, AdapterConfig, load_adapted
from speech.asr.config import CTCModelConfig, SpecAugmentConfig, conformer
from speech.asr.ctc import greedy_decode
from speech.asr.extend import (
    ExtendConfig,
    add_language,
    finetune,
    load_examples,
    load_for_extension,
    main,
    pad_waves,
)
from speech.asr.hub import load_model, save_pretrained
from speech.asr.infer import load_transcriber
from speech.asr.model import CTCModel
from tests.helpers import StopAt, load_script
from text.char_vocab import CharVocab


@pytest.fixture(scope="module")
def new_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Turkish and French, languages the tiny base model never heard."""
    out = tmp_path_factory.mktemp("new_langs")
    build_speech_corpus(SpeechCorpusConfig(out_dir=str(out), langs=["tur_Latn", "fra_Latn"], train_per_lang=6,
                                           dev_per_lang=2, test_per_lang=0, speakers_per_lang=2, workers=2))
    return out


@pytest.fixture(scope="module")
def base_dir(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conformer CTC model trained for a few steps on German and Ukrainian."""
    torch.manual_seed(0)
    train = load_examples(tiny_corpus / "train.jsonl")
    vocab = CharVocab.build([e[1] for e in train], langs=[e[2] for e in train])
    enc = conformer(d_model=32, num_layers=2, num_heads=2, conv_kernel=5, dropout=0.0)
    model = CTCModel(CTCModelConfig(len(vocab), enc, SpecAugmentConfig(freq_masks=0, time_masks=0)))
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    for step in range(8):
        batch = train[(step * 6) % len(train):][:6]
        wave, lens = pad_waves([e[0] for e in batch])
        targets = [torch.tensor(vocab.encode(e[1])) for e in batch]
        logp, out_lens = model(wave, lens)
        loss = F.ctc_loss(logp.transpose(0, 1), torch.nn.utils.rnn.pad_sequence(targets, batch_first=True),
                          out_lens, torch.tensor([len(t) for t in targets]), zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("base") / "model"
    save_pretrained(model.eval(), vocab, out, langs=["deu_Latn", "ukr_Cyrl"])
    (out / "char_lms.json").write_text(json.dumps({"alpha": 0.3, "beta": 1.0, "beam": 4, "lms": {}}))
    return out


@pytest.fixture(scope="module")
def extended(base_dir: Path, new_corpus: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ext") / "tur"
    result = compose_and_run("extend_language", [
        f"model={base_dir}", "lang=tur_Latn", f"train={new_corpus / 'train.jsonl'}", f"output={out}", "steps=6",
        "rank=4", "batch_size=3", f"dev={new_corpus / 'dev.jsonl'}", f"check={tiny_corpus / 'test.jsonl'}"],
        load_script("extend_language").run)
    assert result["drift_hint"] == 0.0 and result["drift_nohint"] == 0.0
    return out


def _logp(model: torch.nn.Module, examples: list, langs: list[str | None]) -> torch.Tensor:
    wave, lens = pad_waves([e[0] for e in examples])
    with torch.no_grad():
        return model(wave, lens, langs)[0]


def test_base_weights_and_old_languages_untouched(base_dir: Path, extended: Path, tiny_corpus: Path) -> None:
    base_state = load_file(str(base_dir / "model.safetensors"))
    ext_state = load_file(str(extended / "model.safetensors"))
    for k, v in base_state.items():
        assert torch.equal(ext_state[f"base.{k}"], v), k
    base, base_vocab, _ = load_for_extension(base_dir)
    model, _ = load_adapted(extended)
    old = load_examples(tiny_corpus / "test.jsonl")
    v0 = len(base_vocab)
    ref = _logp(base.base, old, [None] * len(old))  # the plain CTCModel
    hints: list[list[str | None]] = [[e[2] for e in old], [None] * len(old)]
    for langs in hints:
        out = _logp(model, old, langs)
        assert torch.equal(out[..., :v0], ref)
        assert torch.isinf(out[..., v0:]).all()


def test_vocab_lang_chars_and_char_lms(extended: Path, new_corpus: Path) -> None:
    vocab = CharVocab.load(extended / "vocab.json")
    train = load_examples(new_corpus / "train.jsonl", "tur_Latn")
    used = {c for e in train for c in e[1] if c != " "}
    assert used <= set(vocab.lang_chars["tur_Latn"]) and used <= set(vocab.tokens)
    cfg = json.loads((extended / "config.json").read_text())
    assert cfg["model_type"] == "ctc_adapted" and "tur_Latn" in cfg["langs"] and "deu_Latn" in cfg["langs"]
    base_chars = set(vocab.tokens[: cfg["base"]["vocab_size"]])
    assert {vocab.tokens[i] for i in cfg["languages"]["tur_Latn"]} == used - base_chars != set()
    assert (extended / "char_lms.json").is_file()


def test_routing_mixed_batch_and_round_trip(extended: Path, new_corpus: Path, tiny_corpus: Path) -> None:
    model, _ = load_adapted(extended)
    tur = load_examples(new_corpus / "dev.jsonl", "tur_Latn")[:1]
    deu = load_examples(tiny_corpus / "test.jsonl", "deu_Latn")[:1]
    mixed = _logp(model, [*deu, *tur, *tur], ["deu_Latn", "tur_Latn", None])
    alone_tur = _logp(model, tur, ["tur_Latn"])
    t = alone_tur.shape[1]
    torch.testing.assert_close(mixed[1, :t], alone_tur[0], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(mixed[1, :t], mixed[2, :t])  # the adapter changes the output
    # Saved and reloaded, also through the hub's registry: the same function.
    again, vocab = load_model(extended)
    assert isinstance(again, AdaptedCTCModel)
    assert torch.equal(_logp(again, tur, ["tur_Latn"]), alone_tur)
    assert len(vocab) == again.vocab_size == alone_tur.shape[-1]
    # The transcriber routes by its language hint and keeps to the language's alphabet.
    t = load_transcriber(extended, decoder="greedy")
    hyp = t.transcribe_waves([tur[0][0]], ["tur_Latn"])[0]
    assert set(hyp) <= set(vocab.lang_chars["tur_Latn"]) | {" "}
    assert hyp == greedy_decode(alone_tur, torch.tensor([alone_tur.shape[1]]), vocab, ["tur_Latn"])[0]


def test_second_language_keeps_the_first(extended: Path, new_corpus: Path, tmp_path: Path) -> None:
    tur = load_examples(new_corpus / "dev.jsonl", "tur_Latn")
    first, _ = load_adapted(extended)
    before = _logp(first, tur, ["tur_Latn"] * len(tur))
    out = tmp_path / "tur_fra"
    main({"model": str(extended), "lang": "fra_Latn", "train": str(new_corpus / "train.jsonl"), "output": str(out),
          "steps": "3", "rank": "4", "batch_size": "3"})
    both, vocab = load_adapted(out)
    assert set(both.adapters) == {"tur_Latn", "fra_Latn"}
    after = _logp(both, tur, ["tur_Latn"] * len(tur))
    assert torch.equal(after[..., : before.shape[-1]], before)
    assert set(vocab.lang_chars) >= {"deu_Latn", "ukr_Cyrl", "tur_Latn", "fra_Latn"}


def test_training_lowers_the_new_language_loss(base_dir: Path, new_corpus: Path) -> None:
    model, vocab, _ = load_for_extension(base_dir)
    train = load_examples(new_corpus / "train.jsonl", "tur_Latn", limit=3)
    add_language(model, vocab, "tur_Latn", [e[1] for e in train])
    frozen = {k: v.clone() for k, v in model.base.state_dict().items()}

    def loss() -> float:
        model.eval()
        wave, lens = pad_waves([e[0] for e in train])
        targets = [torch.tensor(vocab.encode(e[1])) for e in train]
        with torch.no_grad():
            logp, out_lens = model(wave, lens, ["tur_Latn"] * len(train))
            return float(F.ctc_loss(logp.transpose(0, 1), torch.nn.utils.rnn.pad_sequence(targets, batch_first=True),
                                    out_lens, torch.tensor([len(t) for t in targets]), zero_infinity=True))

    start = loss()
    finetune(model, vocab, "tur_Latn", train, ExtendConfig(steps=12, batch_size=3, lr=2e-2, warmup=2), log=False)
    assert loss() < 0.9 * start
    assert all(torch.equal(v, frozen[k]) for k, v in model.base.state_dict().items())


def test_clear_errors(base_dir: Path, new_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no kat_Geor utterances"):
        main({"model": str(base_dir), "lang": "kat_Geor", "train": str(new_corpus / "train.jsonl"),
              "output": str(tmp_path / "x")})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"audio": "missing.wav", "text": "merhaba", "lang": "tur_Latn"}) + "\n")
    with pytest.raises(ValueError, match=r"missing\.wav"):
        load_examples(bad)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_for_extension(tmp_path)
    with pytest.raises(ValueError, match="is not 'ctc_adapted'"):
        load_adapted(base_dir)


class _AtStart(Callback):
    """Records the step and optimiser state a run starts from (after any checkpoint was restored)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.step = trainer.global_step
        self.optim = copy.deepcopy(trainer.optimizers[0].state_dict())


def test_resume_continues_at_the_saved_step(base_dir: Path, new_corpus: Path, tmp_path: Path) -> None:
    train = load_examples(new_corpus / "train.jsonl", "tur_Latn", limit=3)
    cfg = ExtendConfig(steps=6, batch_size=2, lr=2e-2, warmup=2)

    def fresh() -> tuple[AdaptedCTCModel, CharVocab]:
        torch.manual_seed(0)  # the LoRA initialisation
        model, vocab, _ = load_for_extension(base_dir, AdapterConfig(rank=4))
        add_language(model, vocab, "tur_Latn", [e[1] for e in train])
        return model, vocab

    def adapter(model: AdaptedCTCModel) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in model.adapters["tur_Latn"].state_dict().items()}

    model, vocab = fresh()
    straight = finetune(model, vocab, "tur_Latn", train, cfg, log=False)
    want = adapter(model)
    run = tmp_path / "run"
    model, vocab = fresh()
    first = finetune(model, vocab, "tur_Latn", train, cfg, log=False,
                     fit=FitSettings(run_dir=str(run), callbacks=[StopAt(3)]))
    assert first == straight[:3]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3
    assert not any(k.startswith("model.base.") for k in ckpt["state_dict"])  # the frozen base stays out
    with pytest.raises(SystemExit, match="resume=last"):
        finetune(*fresh(), "tur_Latn", train, cfg, log=False, fit=FitSettings(run_dir=str(run)))
    model, vocab = fresh()
    probe = _AtStart()
    rest = finetune(model, vocab, "tur_Latn", train, cfg, log=False,
                    fit=FitSettings(run_dir=str(run), resume="last", callbacks=[probe]))
    assert probe.step == 3 and len(rest) == 3
    saved = ckpt["optimizer_states"][0]["state"]
    assert saved and probe.optim["state"].keys() == saved.keys()
    for i, s in saved.items():
        assert all(torch.equal(probe.optim["state"][i][k], v) for k, v in s.items())
    # The same batches, augmentation and masks as the uninterrupted run: the same adapter.
    torch.testing.assert_close(rest, straight[3:])
    for k, v in adapter(model).items():
        torch.testing.assert_close(v, want[k], msg=k)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6


def test_main_checkpoints_beside_the_output_and_resumes(base_dir: Path, new_corpus: Path, tmp_path: Path) -> None:
    args = {"model": str(base_dir), "lang": "tur_Latn", "train": str(new_corpus / "train.jsonl"),
            "output": str(tmp_path / "tur"), "steps": "1", "rank": "4", "batch_size": "3", "limit": "3"}
    main(args)
    last = tmp_path / "tur.run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 1
    assert (tmp_path / "tur.run" / "csv" / "metrics.csv").is_file()
    result = main({**args, "steps": "2", "resume": "last"})  # one more step
    assert torch.load(last, weights_only=True)["global_step"] == 2 and result["final_loss"] is not None
    assert load_adapted(tmp_path / "tur")[0].adapters.keys() == {"tur_Latn"}

"""The frozen LLM of FLAME: a tiny Llama trained on mono text, saved for transformers and the llm_embedder tower."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from datamodules.text_mono import TextLMDataModule
from tests.text_data import write_tiny_corpus
from text.lm_config import text_lm_tiny
from text.lm_module import TextLMModule

TINY = {"d_model": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64, "max_length": 32}


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TextLMDataModule, TextLMModule]]:
    corpus = write_tiny_corpus(tmp_path_factory.mktemp("corpus"))
    dm = TextLMDataModule(
        train_manifest=str(corpus / "parallel" / "train.jsonl"), val_manifest=str(corpus / "parallel" / "dev.jsonl"),
        test_manifest=str(corpus / "parallel" / "test.jsonl"), mono_dir=str(corpus / "mono"),
        tokenizer_path=str(tmp_path_factory.mktemp("tok") / "tokenizer.model"), vocab_size=300, batch_size=16,
        max_length=32,
    )
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model runs several times faster on one thread of a shared CPU
    yield dm, TextLMModule(text_lm_tiny(**TINY), **dm.model_kwargs(), lr=3e-3, warmup_steps=1)
    torch.set_num_threads(threads)


def _val_loss(module: TextLMModule, dm: TextLMDataModule) -> float:
    module.eval()
    with torch.no_grad():
        losses = [(module._loss(b)) for b in dm._eval_loader("val")]
    return sum(loss.item() * n for loss, n in losses) / sum(n for _, n in losses)


def test_held_out_loss_decreases(lm: tuple[TextLMDataModule, TextLMModule]) -> None:
    dm, module = lm
    assert dm.train_langs() == ["deu_Latn", "eng_Latn", "tur_Latn", "ukr_Cyrl"]  # held_out defaults to none
    before = _val_loss(module, dm)
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    module.train()
    batches = iter(dm.train_dataloader())
    for _ in range(40):
        loss, _ = module._loss(next(batches))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _val_loss(module, dm)
    # Random init scores about ln(vocab) = 5.7 nats; 40 steps on a 15-word language must take off at least 1.
    assert after < before - 1.0, (before, after)


def test_export_loads_with_transformers_and_as_llm_embedder(lm: tuple[TextLMDataModule, TextLMModule],
                                                            tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from text.towers import TextTowerConfig, build_text_tower, detect_tower_kind

    dm, module = lm
    out = module.export(tmp_path / "model")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}

    texts = ["Katze Hund Haus", "кіт пес дім річка"]
    hf_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    ids = [[2, *i[:-1]] for i in dm.tokenizer.encode(texts, None)]  # <s> pieces, as the LM trained (no </s>)
    assert hf_tok(texts)["input_ids"] == ids
    assert hf_tok.decode(hf_tok(texts[1])["input_ids"], skip_special_tokens=True) == texts[1]

    hf = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    module.eval()
    x = torch.tensor([ids[0]])
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=x).logits, module.net(input_ids=x).logits, atol=1e-5, rtol=1e-4)

    assert detect_tower_kind(out) == "llm_embedder"
    tower = build_text_tower(TextTowerConfig(kind="llm_embedder", path=str(out)))
    emb = tower.encode([*texts, "kedi köpek ev"])
    assert emb.shape == (3, TINY["d_model"]) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])

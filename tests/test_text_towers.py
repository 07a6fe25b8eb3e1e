"""text.towers: both kinds load offline from tiny saved checkpoints, pool over the mask, lock and fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

from text.towers import (
    HFTextEncoder,
    LLMEmbedder,
    TextTowerConfig,
    build_text_tower,
    find_layers,
    last_real_index,
)

SENTENCES = [
    "the cat sat on the mat",
    "a dog runs in the park",
    "music plays loud tonight",
    "Hallo Welt wie geht es",
    "привіт світ як справи",
    'This sentence : " " means in one word:"',
]
BATCH = ["the cat sat on the mat", "a dog", "music plays loud tonight in the park", "привіт світ"]
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def _tokenizer(template: str, with_pad: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(s, tok.token_to_id(s)) for s in ("<s>", "</s>")]
    )
    pad = {"pad_token": "<pad>"} if with_pad else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        model_input_names=["input_ids", "attention_mask"],
        **pad,
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny XLM-R-like encoder and a tiny Llama-like causal LM, random weights, with their tokenizers."""
    root = tmp_path_factory.mktemp("towers")
    enc_tok = _tokenizer("<s> $A </s>", with_pad=True)
    llm_tok = _tokenizer("<s> $A", with_pad=False)  # no pad token: the embedder must fall back to eos
    vocab = len(enc_tok)
    torch.manual_seed(0)
    enc = XLMRobertaModel(
        XLMRobertaConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            type_vocab_size=1,
        )
    )
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            bos_token_id=2,
            eos_token_id=3,
        )
    )
    paths = {"hf_encoder": root / "xlmr", "llm_embedder": root / "llama"}
    for (model, tok), path in zip([(enc, enc_tok), (llm, llm_tok)], paths.values()):
        model.save_pretrained(path)
        tok.save_pretrained(path)
    return paths


def _tower(checkpoints: dict[str, Path], kind: str, **kw: object) -> HFTextEncoder | LLMEmbedder:
    torch.manual_seed(0)
    tower = build_text_tower(TextTowerConfig(kind=kind, path=str(checkpoints[kind]), **kw))  # type: ignore[arg-type]
    assert isinstance(tower, HFTextEncoder | LLMEmbedder)
    return tower


@pytest.mark.parametrize("kind", ["hf_encoder", "llm_embedder"])
@pytest.mark.parametrize("proj_dim", [None, 8])
def test_encode_shape_and_determinism(checkpoints: dict[str, Path], kind: str, proj_dim: int | None) -> None:
    tower = _tower(checkpoints, kind, proj_dim=proj_dim)
    assert isinstance(tower, HFTextEncoder if kind == "hf_encoder" else LLMEmbedder)
    dim = proj_dim or 32
    assert tower.output_dim == dim
    emb = tower.encode(BATCH, batch_size=3)
    assert emb.shape == (len(BATCH), dim) and emb.dtype == torch.float32
    assert torch.isfinite(emb).all()
    assert torch.equal(emb, tower.encode(BATCH, batch_size=3))
    assert not emb.requires_grad


@pytest.mark.parametrize(
    ("kind", "pooling", "padding_side"),
    [("hf_encoder", p, "right") for p in ("mean", "cls", "last")]
    + [("llm_embedder", "mean", side) for side in ("right", "left")],
)
def test_alone_equals_in_padded_batch(checkpoints: dict[str, Path], kind: str, pooling: str, padding_side: str) -> None:
    tower = _tower(checkpoints, kind, pooling=pooling)
    tower.tokenizer.padding_side = padding_side
    batch = tower.encode(BATCH, batch_size=len(BATCH))
    for i, text in enumerate(BATCH):
        torch.testing.assert_close(tower.encode([text])[0], batch[i], atol=1e-5, rtol=0)


def test_mean_pooling_by_hand(checkpoints: dict[str, Path]) -> None:
    tower = _tower(checkpoints, "hf_encoder", pooling="mean")
    tok = tower.tokenizer(BATCH, padding=True, return_tensors="pt")
    assert (tok["attention_mask"] == 0).any()  # the batch really is padded
    with torch.no_grad():
        h = tower.model(**tok).last_hidden_state  # [B, T, H]
    m = tok["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(tower.encode(BATCH), (h * m).sum(1) / m.sum(1), atol=1e-5, rtol=0)


def test_llm_last_token_by_hand(checkpoints: dict[str, Path]) -> None:
    tower = _tower(checkpoints, "llm_embedder")
    assert tower.tokenizer.pad_token == tower.tokenizer.eos_token == "</s>"
    emb = tower.encode(BATCH)
    for i, text in enumerate(BATCH):
        ids = tower.tokenizer([tower.cfg.prompt.replace("{text}", text)], return_tensors="pt")["input_ids"]
        assert ids[0, -1] == tower.tokenizer.convert_tokens_to_ids(':"')  # the prompt's end is the read-out
        with torch.no_grad():
            h = tower.model(input_ids=ids).last_hidden_state  # [1, T, H]
        torch.testing.assert_close(emb[i], h[0, -1], atol=1e-5, rtol=0)


def test_llm_cuts_text_not_prompt(checkpoints: dict[str, Path]) -> None:
    tower = _tower(checkpoints, "llm_embedder", max_length=4)
    batch = tower.tokenize(["the cat sat on the mat " * 10, "a dog"])
    ids = batch["input_ids"]  # [B, T]
    last = ids[torch.arange(2), last_real_index(batch["attention_mask"])]
    assert ids.shape[1] < 20 and (last == tower.tokenizer.convert_tokens_to_ids(':"')).all()


@pytest.mark.parametrize("kind", ["hf_encoder", "llm_embedder"])
def test_lock_leaves_last_layer_and_projection(checkpoints: dict[str, Path], kind: str) -> None:
    tower = _tower(checkpoints, kind, proj_dim=8, frozen=False)
    assert all(p.requires_grad for p in tower.parameters())
    tower.lock(unlocked_layers=1)
    last = find_layers(tower.model)[-1]
    expected = {id(p) for p in last.parameters()} | {id(p) for p in tower.proj.parameters()}
    assert {id(p) for p in tower.parameters() if p.requires_grad} == expected
    tower.train()
    assert tower.model.training  # partly trainable: dropout follows the trainer
    tower.lock(0)
    tower.train()
    assert not tower.model.training and all(p.requires_grad for p in tower.proj.parameters())


@pytest.mark.parametrize("kind", ["hf_encoder", "llm_embedder"])
def test_frozen_has_no_grad_and_trainable_learns(checkpoints: dict[str, Path], kind: str) -> None:
    frozen = _tower(checkpoints, kind)
    frozen.train()
    assert not frozen.model.training
    frozen.encode(BATCH)
    assert all(not p.requires_grad and p.grad is None for p in frozen.model.parameters())
    trainable = _tower(checkpoints, kind, frozen=False, proj_dim=8)
    trainable(BATCH).pow(2).sum().backward()
    assert find_layers(trainable.model)[0].parameters().__next__().grad is not None


def test_unknown_kind_and_missing_path(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'clip_text'.*hf_encoder, llm_embedder"):
        build_text_tower(TextTowerConfig(kind="clip_text", path=str(checkpoints["hf_encoder"])))
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build_text_tower(TextTowerConfig(kind="hf_encoder", path=str(missing)))
    with pytest.raises(ValueError, match="pooling"):
        build_text_tower(TextTowerConfig(kind="hf_encoder", path=str(checkpoints["hf_encoder"]), pooling="max"))

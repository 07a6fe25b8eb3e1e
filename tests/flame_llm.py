"""A tiny random Llama with a byte-level tokenizer, saved as a transformers directory, for FLAME's text-side tests."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """One token per UTF-8 byte (no merges), so any caption in any script tokenises without unknowns."""
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    vocab.update({c: i + len(SPECIALS) for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def write_tiny_llm(path: Path, seed: int = 0, hidden: int = 32) -> Path:
    """A 2-layer random ``LlamaForCausalLM`` and its tokenizer in ``path``."""
    tok = byte_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=2048, bos_token_id=2, eos_token_id=3, pad_token_id=0,
    ))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path

"""Encoding throughput (sentences per second) of the three text-tower kinds, at equal size, on this CPU.

    python benchmarks/text_encode_throughput.py [model=<sentence encoder dir>] [n=2000] [batch_size=64] [threads=2]
        [hidden=128] [layers=2]

Builds a tiny random XLM-R-like encoder and a tiny random Llama-like LM (``hidden`` wide, ``layers`` deep, a BPE
tokenizer trained on the corpus) and, unless ``model=`` is given, a random sentence encoder of the same size with a
SentencePiece tokenizer; then times ``encode`` over ``n`` test sentences of every language (one warm-up batch).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

from common import runner
from datamodules.text import read_parallel
from text.sentence_encoder import SentenceEncoder, save_pretrained, sentence_encoder_tiny
from text.tokenizer import SentencePieceTokenizer
from text.towers import TextTowerConfig, build_text_tower


def hf_tokenizer(texts: list[str], vocab: int, template: str) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<pad>", "<unk>", "<s>",
                                                                                          "</s>"]))
    tok.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(s, tok.token_to_id(s)) for s in ("<s>", "</s>")]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", model_input_names=["input_ids", "attention_mask"])


def build(root: Path, texts: list[str], hidden: int, layers: int, model: str | None) -> dict[str, Path]:
    """Tiny random checkpoints of every kind, of equal width and depth."""
    heads, ffn, vocab = 4, 4 * hidden, 8000
    enc_tok, llm_tok = hf_tokenizer(texts, vocab, "<s> $A </s>"), hf_tokenizer(texts, vocab, "<s> $A")
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(enc_tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=256, pad_token_id=0, bos_token_id=2, eos_token_id=3,
        type_vocab_size=1,
    )).save_pretrained(root / "xlmr")
    enc_tok.save_pretrained(root / "xlmr")
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(llm_tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, intermediate_size=ffn, max_position_embeddings=256, bos_token_id=2, eos_token_id=3,
    )).save_pretrained(root / "llama")
    llm_tok.save_pretrained(root / "llama")
    if model is None:
        sp = SentencePieceTokenizer.train(texts, root / "spm.model", vocab_size=vocab)
        net = SentenceEncoder(sentence_encoder_tiny(vocab_size=len(sp), d_model=hidden, num_layers=layers,
                                                    num_heads=heads, ffn_dim=ffn, embed_dim=hidden))
        save_pretrained(net, sp, root / "sentence_encoder")
    return {"hf_encoder": root / "xlmr", "llm_embedder": root / "llama",
            "sentence_encoder": Path(model) if model else root / "sentence_encoder"}


def run(cfg: DictConfig) -> None:
    """Time ``encode`` of every tower kind and print the table."""
    n, batch_size, threads = int(cfg.n), int(cfg.batch_size), int(cfg.threads)
    hidden, layers = int(cfg.hidden), int(cfg.layers)
    torch.set_num_threads(threads)
    rows = read_parallel(cfg.data)
    texts = [t for r in rows for t in r.values()]
    sentences = texts[:: max(1, len(texts) // n)][:n]
    print(f"{len(sentences)} sentences, batch {batch_size}, {threads} threads, hidden {hidden}, {layers} layers")
    print(f"{'kind':<18} {'params (M)':>10} {'sentences/s':>12} {'ms/sentence':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp), texts, hidden, layers, cfg.model)
        for kind, path in paths.items():
            tower = build_text_tower(TextTowerConfig(kind=kind, path=str(path)))
            tower.encode(sentences[:batch_size], batch_size=batch_size)  # warm-up
            start = time.perf_counter()
            tower.encode(sentences, batch_size=batch_size)
            seconds = time.perf_counter() - start
            params = sum(p.numel() for p in tower.parameters()) / 1e6
            rate = len(sentences) / seconds
            print(f"{kind:<18} {params:>10.2f} {rate:>12.0f} {1000 / rate:>12.2f}", flush=True)


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="text_encode_throughput")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "text_encode_throughput", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/text_encode_throughput.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("text_encode_throughput", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

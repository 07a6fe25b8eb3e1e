"""The suite's SentencePiece model as a transformers tokenizer, so ``AutoTokenizer.from_pretrained`` loads it.

The pieces, their unigram scores, the byte fallback and the special ids (pad 0, unk 1, bos 2, eos 3) are copied into
a ``tokenizers`` Unigram model; text comes out as the same ids as ``SentencePieceTokenizer`` gives (NFKC, spaces as
``▁``), with ``<s>`` in front as the LM saw every sentence in training.
"""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def to_transformers(model_file: str | Path, max_length: int = 2048) -> PreTrainedTokenizerFast:
    """A fast transformers tokenizer with the pieces and ids of the SentencePiece ``model_file``."""
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=UNK_ID, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁",
                                                                                prepend_scheme="always")])
    bos = sp.id_to_piece(BOS_ID)
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A $B",
                                                       special_tokens=[(bos, BOS_ID)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=sp.id_to_piece(EOS_ID), unk_token=sp.id_to_piece(UNK_ID),
        pad_token=sp.id_to_piece(PAD_ID), model_max_length=max_length,
    )

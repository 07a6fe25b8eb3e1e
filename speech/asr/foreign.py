"""Foreign checkpoints straight in: a transformers ``Wav2Vec2ForCTC`` or a fairseq2 / Omnilingual ASR CTC directory
becomes a suite model directory, converted once and cached under a key of the source's path and file times.

transformers: ``config.json`` (model_type wav2vec2, architectures Wav2Vec2ForCTC), read by
``speech.asr.interop.hf.load_hf``. fairseq2: one ``*.pt`` checkpoint of a ``Wav2Vec2AsrModel`` (``{"model": ...}``
or the bare state dict), ``encoder_config.yaml`` (or ``.json``) with fairseq2's ``Wav2Vec2EncoderConfig`` fields
(an Omnilingual card's architecture), and its SentencePiece tokenizer (one ``*.model``, e.g. omniASR_tokenizer.model);
keys and config go through ``speech.asr.interop.fairseq2``, and the CTC blank is id 0 as in fairseq2.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_CACHE = "~/.cache/polyglot-suite/converted"
"""Where converted models go unless a ``cache_dir`` is given."""


FAIRSEQ2_CONFIGS = ("encoder_config.yaml", "encoder_config.json")
"""The file of a fairseq2 directory that holds its encoder's ``Wav2Vec2EncoderConfig`` fields."""


def _one(d: Path, pattern: str, what: str) -> Path:
    found = sorted(d.glob(pattern))
    if len(found) != 1:
        raise ValueError(f"{d}: a fairseq2 directory needs exactly one {what} ({pattern}), found "
                         f"{', '.join(f.name for f in found) or 'none'}")
    return found[0]


def foreign_kind(path: str | os.PathLike[str]) -> str | None:
    """"transformers" (``Wav2Vec2ForCTC`` dir), "fairseq2", or None for anything else (suite dirs, ``.ckpt`` files)."""
    d = Path(path)
    cfg = d / "config.json"
    if d.is_dir() and not cfg.is_file() and any((d / n).is_file() for n in FAIRSEQ2_CONFIGS):
        return "fairseq2"
    if not cfg.is_file():
        return None
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{cfg}: not valid JSON ({e})") from e
    if not isinstance(data, dict) or data.get("model_type") != "wav2vec2":
        return None
    archs = data.get("architectures") or []
    if "Wav2Vec2ForCTC" not in archs:
        raise ValueError(f"{path}: a transformers wav2vec2 directory without a CTC head (architectures {archs}); "
                         "only Wav2Vec2ForCTC transcribes")
    return "transformers"


def source_key(path: str | os.PathLike[str]) -> str:
    """A hash of the directory's absolute path and each file's name, size and modification time."""
    root = Path(path).resolve()
    h = hashlib.sha256(str(root).encode())
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"\0{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def sentencepiece_vocab(path: Path, blank_id: int = 0) -> Any:
    """A SentencePiece model as a ``TokenVocab``: "▁" is the word delimiter, control and unknown pieces are silent."""
    import sentencepiece as spm

    from speech.asr.interop.vocab import TokenVocab

    sp = spm.SentencePieceProcessor(model_file=str(path))
    n = sp.get_piece_size()
    tokens = [sp.id_to_piece(i).replace("\u2581", " ") for i in range(n)]
    silent = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    return TokenVocab(tokens, blank_id, sp.unk_id(), silent, word_delimiter="\u2581")


def load_fairseq2(d: Path) -> tuple[Any, Any]:
    """A fairseq2 / Omnilingual ASR CTC directory (layout above) as a ``CTCModel`` and its token table."""
    import torch
    from omegaconf import OmegaConf

    from speech.asr.config import CTCModelConfig
    from speech.asr.interop.fairseq2 import config_from_fairseq2, state_from_fairseq2
    from speech.asr.model import CTCModel

    conf = next(d / n for n in FAIRSEQ2_CONFIGS if (d / n).is_file())
    enc = OmegaConf.to_container(OmegaConf.load(conf), resolve=True)
    if not isinstance(enc, dict):
        raise ValueError(f"{conf}: expected the fields of a Wav2Vec2EncoderConfig")
    cfg = config_from_fairseq2({str(k): v for k, v in enc.items()})
    state = torch.load(str(_one(d, "*.pt", "checkpoint")), map_location="cpu", weights_only=True)
    try:
        ours = state_from_fairseq2(state, cfg)
    except KeyError as e:
        raise ValueError(f"{d}: not a fairseq2 wav2vec2 ASR checkpoint ({e.args[0]})") from e
    if "head.weight" not in ours:
        raise ValueError(f"{d}: the checkpoint has no final_proj (an SSL model, not a CTC recogniser)")
    vocab = sentencepiece_vocab(_one(d, "*.model", "SentencePiece tokenizer"))
    rows = int(ours["head.weight"].shape[0])
    if len(vocab) != rows:
        raise ValueError(f"{d}: the tokenizer has {len(vocab)} pieces but final_proj has {rows} rows")
    model = CTCModel(CTCModelConfig(vocab_size=rows, encoder=cfg, encoder_type="wav2vec2"))
    try:
        model.load_state_dict(ours)
    except RuntimeError as e:
        raise ValueError(f"{d}: the weights do not fit {conf.name}: {' '.join(str(e).split())[:300]}") from e
    return model.eval(), vocab


def _convert(src: Path, out: Path, kind: str) -> None:
    from speech.asr.hub import save_pretrained
    from speech.asr.interop.hf import load_hf

    model, tokens = load_hf(src) if kind == "transformers" else load_fairseq2(src)
    save_pretrained(model, tokens, out, source=str(src))


def suite_model_dir(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
                    ) -> str | os.PathLike[str]:
    """``path`` itself, or for a foreign checkpoint the cached suite directory converted from it.

    The conversion is written into a temporary folder beside the cache entry and renamed into place, so an
    interrupted or concurrent conversion never leaves a half-written model behind.
    """
    kind = foreign_kind(path)
    if kind is None:
        return path
    cache = Path(cache_dir or DEFAULT_CACHE).expanduser()
    target = cache / source_key(path)
    if (target / "config.json").is_file():
        log.info("%s: using the suite model converted earlier (%s checkpoint) in %s", path, kind, target)
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache))
    try:
        _convert(Path(path), tmp, kind)
        try:
            tmp.rename(target)
        except OSError:  # another process converted it first: its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: converted the %s checkpoint into a suite model; cached in %s", path, kind, target)
    return target

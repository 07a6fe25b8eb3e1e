"""Few-shot extension of a CTC model to a new language: per-language adapters trained on 5-50 utterances.

    python scripts/extend_language.py model=runs/train/asr_lowres_default/model lang=tur_Latn \\
        train=data/speech_tur/train.jsonl output=runs/extend/tur [dev=...] [check=...] [steps=60] [rank=8] [text=...]

The base weights stay frozen; only the new language's LoRA deltas and head rows train.
``dev=`` prints the new language's CER, ``check=`` the CER drift on old languages (``check_limit=`` caps it),
``text=`` adds a character LM for the new language from a user's text file, ``limit=n`` trains on the first n
utterances only.

Training runs under a Lightning Trainer: ``<output>.run/`` (or ``run_dir=``) gets ``checkpoints/last.ckpt`` (at the
end, and every ``ckpt_every=`` steps) and ``csv/metrics.csv``; ``resume=last`` (or a path) continues a run, e.g. to
more ``steps=``. ``precision=`` (default 32-true), ``accelerator=`` (auto) and ``devices=`` (1) as in train.py.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from common.fit import FitSettings, StepStream
from common.fit import fit as run_fit
from common.metrics import ErrorRates, format_table
from datamodules.manifest import read_manifest
from speech.asr.adapters import MODEL_TYPE, AdaptedCTCModel, AdapterConfig, load_adapted, save_adapted
from speech.asr.beam import LanguageModels
from speech.asr.ctc import greedy_decode
from speech.asr.extend_module import AdapterExtensionModule, Example, batch_plan, build_batch
from speech.asr.hub import load_model
from speech.audio import AudioError, load_audio
from speech.features import pad_waves
from text.char_lm import CharNgramLM
from text.char_vocab import SPACE, CharVocab
from text.normalize import normalize_transcript


@dataclass
class ExtendConfig:
    """Fine-tuning of one language's adapter."""

    steps: int = 60
    """Optimiser steps (about 2 minutes on 2 idle CPU cores)."""
    batch_size: int = 4
    """Utterances per step."""
    lr: float = 5e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 1e-2
    """AdamW weight decay on the adapter matrices."""
    warmup: int = 6
    """Linear warm-up steps before the cosine decay."""
    speeds: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    """Speed perturbation factors, one drawn per utterance and step."""
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    """LoRA rank, targets and SpecAugment (used only for a model that has no adapters yet)."""
    seed: int = 0
    """Seed for initialisation, batching and augmentation."""


def load_examples(manifest: str | Path, lang: str | None = None, limit: int | None = None) -> list[Example]:
    """Audio and normalised text of a manifest; rows of other languages are skipped when ``lang`` is given."""
    out = []
    for row in read_manifest(manifest):
        if lang is not None and row.get("lang", lang) != lang:
            continue
        text = normalize_transcript(row.get("text", ""), row.get("lang"))
        if not text:
            raise ValueError(f"{manifest}: {row['audio_raw']} has no transcript")
        try:
            wave = load_audio(row["audio"])
        except AudioError as e:
            raise ValueError(f"{manifest}: {row['audio_raw']}: {e.reason}") from None
        out.append((wave, text, row.get("lang", lang or "und")))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_for_extension(model_dir: str | Path, cfg: AdapterConfig | None = None,
                       ) -> tuple[AdaptedCTCModel, CharVocab, dict[str, Any]]:
    """A base or already adapted model directory as an adapted model, its vocabulary and base config."""
    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d}: not a model directory (config.json is missing)")
    config = json.loads((d / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") == MODEL_TYPE:
        model, vocab = load_adapted(d)
        return model, vocab, config["base"]
    base, vocab = load_model(d)
    return AdaptedCTCModel(base, len(vocab), cfg), vocab, config


def add_language(model: AdaptedCTCModel, vocab: CharVocab, lang: str, texts: list[str]) -> list[str]:
    """Extend the vocabulary with ``texts``' unseen characters and give ``lang`` a fresh adapter."""
    alphabet = sorted({c for t in texts for c in t if c != SPACE})
    added = vocab.extend(alphabet)
    vocab.lang_chars[lang] = "".join(alphabet)
    model.vocab_size = len(vocab)
    new_ids = [vocab.index[c] for c in alphabet if vocab.index[c] >= model.base_vocab_size]
    model.add_language(lang, new_ids, vocab)
    return added


def finetune(model: AdaptedCTCModel, vocab: CharVocab, lang: str, examples: list[Example], cfg: ExtendConfig,
             log: bool = True, fit: FitSettings | None = None) -> list[float]:
    """Train ``lang``'s adapter with CTC on ``examples`` under Lightning; returns the loss of every step run here.

    ``fit`` sets devices, precision, the run folder (checkpoints, CSV logs) and what to resume from.
    """
    torch.manual_seed(cfg.seed)
    module = AdapterExtensionModule(model, lang, vocab.blank_id, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    warmup=cfg.warmup, print_every=25 if log else 0)
    stream = StepStream(lambda: batch_plan(len(examples), cfg.batch_size, cfg.speeds, cfg.seed),
                        partial(build_batch, examples, vocab))
    module.train()
    run_fit(module, stream, fit or FitSettings(), max_steps=cfg.steps, gradient_clip_val=1.0)
    model.eval()
    return module.losses


@torch.inference_mode()
def transcribe(model: AdaptedCTCModel, vocab: CharVocab, examples: list[Example], hint: bool,
               batch_size: int = 16) -> list[str]:
    """Greedy transcripts; with ``hint`` the model routes by, and decoding keeps to, each item's language."""
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    hyps = [""] * len(examples)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        wave, lens = pad_waves([examples[i][0] for i in idx])
        langs: list[str | None] = [examples[i][2] for i in idx] if hint else [None] * len(idx)
        logp, out_lens = model(wave, lens, langs)
        for i, h in zip(idx, greedy_decode(logp, out_lens, vocab, langs)):
            hyps[i] = h
    return hyps


def error_rates(hyps: list[str], examples: list[Example]) -> dict[str, dict[str, float]]:
    rates = ErrorRates()
    rates.update(hyps, [e[1] for e in examples], [e[2] for e in examples])
    return rates.summary()


def add_char_lm(model_dir: Path, lang: str, text_file: str | Path, order: int = 6) -> LanguageModels:
    """Fit a character n-gram LM on a user's text file and store it with the model's other LMs."""
    lines = [normalize_transcript(x) for x in Path(text_file).read_text(encoding="utf-8").splitlines()]
    lines = [x for x in lines if x]
    if not lines:
        raise ValueError(f"{text_file}: no text to build a character LM from")
    lms = LanguageModels.load(model_dir) or LanguageModels({})
    lms.lms[lang] = CharNgramLM(order).fit(lines)
    lms.save(model_dir)
    return lms


def write_model_dir(model: AdaptedCTCModel, vocab: CharVocab, base_config: dict[str, Any], source: Path,
                    output: Path) -> None:
    """Write the whole directory beside ``output`` and move it into place, so a reader never sees half of it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        save_adapted(model, vocab, base_config, tmp)
        if (source / LanguageModels.FILE).is_file():
            shutil.copyfile(source / LanguageModels.FILE, tmp / LanguageModels.FILE)
        old = output.with_name(f".{output.name}.old")
        if output.exists():
            output.rename(old)
        tmp.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _cer(summary: dict[str, dict[str, float]], lang: str = "all") -> float:
    return 100 * summary[lang]["cer"]


def main(args: Mapping[str, Any]) -> dict[str, Any]:
    """Extend ``model`` to ``lang`` from ``train`` and write ``output``; returns the measured figures."""
    missing = {"model", "lang", "train", "output"} - set(args.keys())
    if missing:
        raise SystemExit(f"missing argument(s) {', '.join(sorted(missing))}\n{__doc__}")
    lang, source, output = str(args["lang"]), Path(args["model"]), Path(args["output"])
    adapter = AdapterConfig(rank=int(args.get("rank", 8)), alpha=float(args.get("alpha", 2 * int(args.get("rank", 8)))))
    steps = int(args.get("steps", ExtendConfig.steps))
    cfg = ExtendConfig(steps=steps, batch_size=int(args.get("batch_size", ExtendConfig.batch_size)),
                       lr=float(args.get("lr", ExtendConfig.lr)), warmup=max(1, steps // 10), adapter=adapter,
                       seed=int(args.get("seed", 0)))
    torch.manual_seed(cfg.seed)
    train = load_examples(args["train"], lang, limit=int(args["limit"]) if "limit" in args else None)
    if not train:
        raise SystemExit(f"{args['train']}: no {lang} utterances")
    model, vocab, base_config = load_for_extension(source, cfg.adapter)
    added = add_language(model, vocab, lang, [e[1] for e in train])
    print(f"{lang}: {len(train)} utterances, new characters {''.join(added) or '(none)'}")
    t0 = time.time()
    losses = finetune(model, vocab, lang, train, cfg, fit=FitSettings.from_args(args, run_dir=f"{output}.run"))
    result: dict[str, Any] = {"lang": lang, "utterances": len(train), "added_chars": "".join(added),
                              "train_seconds": round(time.time() - t0, 1),
                              "final_loss": losses[-1] if losses else None}
    write_model_dir(model, vocab, base_config, source, output)
    if "text" in args:
        add_char_lm(output, lang, args["text"])
    if "dev" in args:
        dev = load_examples(args["dev"], lang)
        summary = error_rates(transcribe(model, vocab, dev, hint=True), dev)
        result["dev_cer"] = _cer(summary)
        print(f"dev ({lang}, greedy, with language hint):\n{format_table(summary)}")
    if "check" in args:
        check = load_examples(args["check"], limit=int(args["check_limit"]) if "check_limit" in args else None)
        original, original_vocab, _ = load_for_extension(source)
        ref = error_rates(transcribe(original, original_vocab, check, hint=True), check)
        for hint in (True, False):
            summary = error_rates(transcribe(model, vocab, check, hint=hint), check)
            result[f"drift_{'hint' if hint else 'nohint'}"] = _cer(summary) - _cer(ref)
            print(f"old languages, {'with' if hint else 'without'} hint (original model: {_cer(ref):.2f}% CER):\n"
                  f"{format_table(summary)}")
    print(json.dumps(result, ensure_ascii=False))
    return result


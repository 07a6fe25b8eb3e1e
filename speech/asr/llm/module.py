"""LightningModule for LLM-ASR: next-token loss on the language token and transcript, per-language CER, LID."""

from __future__ import annotations

import random
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from common.metrics import LanguageErrorRates, log_error_rates
from common.optim import adamw_warmup_cosine, decay_groups
from speech.asr.llm.config import DecoderLMConfig, LLMASRConfig, decoder_lm_tiny
from speech.asr.llm.decode import decode_prompts, max_tokens
from speech.asr.llm.hub import ctc_encoder_config, load_ctc_encoder, save_pretrained
from speech.asr.llm.model import LLMASR
from speech.asr.llm.tokens import EncodedAudio, TokenSequence, build_sequence, pad_sequences
from speech.audio import SAMPLE_RATE
from speech.encoders.conformer import ConformerConfig


def _as_dict(x: Any) -> dict[str, Any]:
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})


class LLMASRModule(L.LightningModule):
    """Trains an ``LLMASR`` on (in-context examples +) utterance sequences; validates with greedy decoding.

    ``freeze_encoder`` fixes an encoder loaded from ``init_encoder``; a randomly initialised one always trains.
    ``ctc_compress`` (default: whenever the encoder is a frozen CTC model's) feeds the decoder CTC-compressed
    frames (``ctc_compress`` in ``speech.asr.llm.model``).
    """

    def __init__(
        self,
        langs: list[str],
        encoder: ConformerConfig | dict[str, Any] | None = None,
        lm: DecoderLMConfig | dict[str, Any] | None = None,
        stack: int = 4,
        projector_mult: int = 2,
        init_encoder: str | None = None,
        freeze_encoder: bool = True,
        ctc_compress: bool | None = None,
        encoder_lr_scale: float = 0.1,
        lang_drop: float = 0.3,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
        max_bytes_per_second: float = 40.0,
    ):
        super().__init__()
        if ctc_compress is None:
            ctc_compress = bool(init_encoder and freeze_encoder)
        elif ctc_compress and not (init_encoder and freeze_encoder):
            raise ValueError("ctc_compress needs a frozen CTC model: set init_encoder and freeze_encoder=true")
        enc, ctc_vocab = ctc_encoder_config(init_encoder) if init_encoder else (_as_dict(encoder), 0)
        self.save_hyperparameters({
            "langs": list(langs), "encoder": enc, "lm": _as_dict(lm or decoder_lm_tiny()), "stack": stack,
            "projector_mult": projector_mult, "init_encoder": init_encoder, "freeze_encoder": freeze_encoder,
            "ctc_compress": ctc_compress,
            "encoder_lr_scale": encoder_lr_scale, "lang_drop": lang_drop, "lr": lr, "weight_decay": weight_decay,
            "betas": list(betas), "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
            "max_bytes_per_second": max_bytes_per_second,
        })
        cfg = LLMASRConfig(langs=list(langs), encoder=ConformerConfig(**enc), lm=DecoderLMConfig(**self.hparams["lm"]),
                           stack=stack, projector_mult=projector_mult, ctc_vocab=ctc_vocab if ctc_compress else 0)
        self.net = LLMASR(cfg)
        if init_encoder:
            load_ctc_encoder(self.net, init_encoder)
        self.frozen = bool(freeze_encoder and init_encoder)
        if self.frozen:
            self.net.encoder.requires_grad_(False).eval()
            if self.net.ctc_head is not None:
                self.net.ctc_head.requires_grad_(False)
        self.val_rates = LanguageErrorRates(self.hparams["langs"])
        self.test_rates = LanguageErrorRates(self.hparams["langs"])
        self._lid = {"val": [0, 0], "test": [0, 0]}

    def train(self, mode: bool = True) -> LLMASRModule:
        """A frozen encoder stays in eval mode (no dropout), so its features match inference."""
        super().train(mode)
        if self.frozen:
            self.net.encoder.eval()
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning keeps each submodule's mode rather than calling train(); make sure of it here.
        self.train()

    def _encode(self, batch: dict[str, Any]) -> EncodedAudio:
        """Audio embeddings [N, A, D] of the batch's utterances, then of their in-context examples.

        The two groups go through the encoder separately, so the short examples aren't padded to the
        longest utterance; their frames are padded together afterwards.
        """
        groups = [(batch["wave"], batch["wave_lens"])]
        if len(batch.get("ctx_wave_lens", [])):
            groups.append((batch["ctx_wave"], batch["ctx_wave_lens"]))
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = [self.net.encoder(*self.net.frontend(wave, lens)) for wave, lens in groups]
        t = max(h.shape[1] for h, _ in out)
        hidden = torch.cat([F.pad(h, (0, 0, 0, t - h.shape[1])) for h, _ in out])
        return self.net.project(hidden, torch.cat([lens for _, lens in out]))

    def _sequences(self, batch: dict[str, Any], enc: EncodedAudio, upto: str, drop: float) -> list[TokenSequence]:
        """One sequence per utterance; its in-context examples are clips ``B..`` in ``ctx_counts`` order."""
        tok, b_n = self.net.tok, len(batch["texts"])
        seqs, c = [], b_n
        for b in range(b_n):
            keep = random.random() >= drop
            ctx = []
            for _ in range(batch.get("ctx_counts", [0] * b_n)[b]):
                lang = tok.lang_id(batch["ctx_langs"][c - b_n]) if keep else None
                ctx.append(enc.segment(c, lang, tok.encode(batch["ctx_texts"][c - b_n])))
                c += 1
            lang = tok.lang_id(batch["langs"][b]) if keep else None
            query = enc.segment(b, lang, tok.encode(batch["texts"][b]))
            seqs.append(build_sequence(tok, ctx, query, upto))
        return seqs

    def _loss(self, batch: dict[str, Any], drop: float) -> torch.Tensor:
        enc = self._encode(batch)
        seq = pad_sequences(self._sequences(batch, enc, "eos", drop), self.net.tok.pad_id)
        seq = {k: v.to(self.device) for k, v in seq.items()}
        x = self.net.embed(seq["ids"], seq["clip"], seq["frame"], enc.audio)
        logits, _ = self.net(x, seq["pos"], None)  # [B, L, V]; right padding needs no key mask
        return F.cross_entropy(logits[:, :-1].transpose(1, 2), seq["targets"][:, 1:], ignore_index=-100)

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> torch.Tensor | None:
        if batch is None:
            return None
        loss = self._loss(batch, self.hparams["lang_drop"])
        bs = len(batch["texts"])
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/audio_seconds", batch["seconds"], reduce_fx="sum", on_step=False, on_epoch=True,
                 batch_size=bs)
        return loss

    def _eval_step(self, batch: dict[str, Any] | None, rates: LanguageErrorRates, stage: str) -> None:
        if batch is None:
            return
        batch = {**batch, "ctx_counts": [0] * len(batch["texts"])}
        self.log(f"{stage}/loss", self._loss(batch, 0.0), batch_size=len(batch["texts"]), sync_dist=True)
        enc = self._encode(batch)
        seconds = (batch["wave_lens"].float() / SAMPLE_RATE).tolist()
        prompts = self._sequences(batch, enc, "bos", 0.0)
        max_len = max_tokens(seconds, self.hparams["max_bytes_per_second"])
        hyps, logits = decode_prompts(self.net, prompts, enc.audio, max_len)
        rates.update(hyps, batch["texts"], batch["langs"])
        # A known language's prompt ends "<lid> lang <bos>": the language was predicted at column -3.
        tok = self.net.tok
        pred = logits[:, -3, tok.first_lang:].argmax(-1).tolist() if tok.langs else []
        for p, lang in zip(pred, batch["langs"]):
            if lang in tok.lang_ids:
                self._lid[stage][0] += int(tok.langs[p] == lang)
                self._lid[stage][1] += 1

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, self.val_rates, "val")

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, self.test_rates, "test")

    def _log_rates(self, rates: LanguageErrorRates, stage: str) -> None:
        log_error_rates(self, rates, stage)
        right, total = self._lid[stage]
        self._lid[stage] = [0, 0]
        self.log(f"{stage}/lid_acc", right / max(total, 1), rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        self._log_rates(self.val_rates, "val")

    def on_test_epoch_end(self) -> None:
        self._log_rates(self.test_rates, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        encoder = [(n, p) for n, p in self.net.named_parameters() if n.startswith("encoder.")]
        rest = [(n, p) for n, p in self.net.named_parameters() if not n.startswith("encoder.")]
        groups = decay_groups(rest, hp["weight_decay"])
        if hp["encoder_lr_scale"] > 0:
            groups += decay_groups(encoder, hp["weight_decay"], lr=hp["lr"] * hp["encoder_lr_scale"])
        return adamw_warmup_cosine(self, groups, hp["lr"], hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` for ``LLMTranscriber.from_pretrained``."""
        return save_pretrained(self.net, out_dir)

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Per-language CER/WER and LID accuracy on ``cfg.data``'s test split, without in-context examples."""
        import hydra

        from common.evaluation import trainer_test

        model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        return trainer_test(cfg, model, hydra.utils.instantiate(cfg.data, _convert_="all"), ckpt)

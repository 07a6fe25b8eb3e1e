"""The CUDA paths: GPU transcription agrees with the CPU, and a bf16-mixed Lightning fit learns on the GPU.

Marked ``gpu`` (left out of the default run) and skipped where no GPU is visible; run them with
``pytest -m gpu tests/test_cuda.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.speech import collate_speech
from speech.asr.batch import Item, transcribe_to_file
from speech.asr.config import CTCModelConfig
from speech.asr.infer import Transcriber
from speech.asr.model import CTCModel
from speech.asr.module import ASRModule
from speech.audio import write_audio
from speech.encoders.wav2vec2 import wav2vec2_tiny
from tests.helpers import speechlike
from text.char_vocab import CharVocab

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _waves(n: int, seed: int = 0) -> list[np.ndarray]:
    """Speech-like audio of 1-6 s: different lengths, so batches are padded."""
    rng = np.random.default_rng(seed)
    return [speechlike(rng.uniform(1, 6), seed=seed + i) for i in range(n)]


def _confident_model(vocab: CharVocab) -> CTCModel:
    torch.manual_seed(0)
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=wav2vec2_tiny(), encoder_type="wav2vec2"))
    with torch.no_grad():  # a confident head, so argmax ties between devices are rare
        model.head.weight.mul_(20.0)
    return model.eval()


def test_gpu_transcripts_match_cpu(tmp_path: Path) -> None:
    vocab = CharVocab(list("abcdefghij "))
    model = _confident_model(vocab)
    waves = _waves(12)
    cpu = Transcriber(model, vocab, "cpu").transcribe(waves, batch_size=4)
    gpu = Transcriber(model, vocab, "cuda").transcribe(waves, batch_size=4)
    assert any(cpu)
    assert gpu == cpu

    # The batch path (length-sorted batches, resumable jsonl) on the GPU, with a bf16 variant beside it.
    paths = [tmp_path / f"utt{i}.wav" for i in range(len(waves))]
    for p, w in zip(paths, waves):
        write_audio(p, w)
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.jsonl"
        report = transcribe_to_file(Transcriber(model, vocab, "cuda", precision=precision),
                                    [Item(str(p), str(p)) for p in paths], out, progress=False)
        assert report.done == len(paths) and not report.failed
    rows = {r["audio"]: r["text"] for r in map(json.loads, (tmp_path / "fp32.jsonl").read_text().splitlines())}
    assert [rows[str(p)] for p in paths] == cpu


def test_bf16_mixed_fit_on_gpu_lowers_ctc_loss() -> None:
    """Overfit one fixed batch for 40 steps on the GPU in bf16-mixed: the CTC loss falls by half or more."""
    vocab = CharVocab(list("abcde"))
    texts = ["abc", "dea", "bbe", "cad"]
    batch = collate_speech([{"wave": torch.from_numpy(w), "target": torch.tensor(vocab.encode(t)), "text": t,
                             "lang": "xxx_Latn", "audio": f"utt{i}"}
                            for i, (w, t) in enumerate(zip(_waves(4, seed=1), texts))])

    class FixedBatch(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 40

        def __getitem__(self, i: int) -> dict:
            return batch

    on_gpu = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}
    torch.manual_seed(0)
    module = ASRModule(wav2vec2_tiny(), vocab, encoder_type="wav2vec2", lr=1e-3, warmup_steps=5,
                       specaug={"freq_masks": 0, "time_masks": 0}).cuda().eval()
    with torch.no_grad():
        first = module._loss(on_gpu)[0].item()
    trainer = L.Trainer(accelerator="gpu", devices=1, precision="bf16-mixed", max_steps=40, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, torch.utils.data.DataLoader(FixedBatch(), batch_size=None))
    assert trainer.strategy.root_device.type == "cuda"
    module.cuda().eval()
    with torch.no_grad():
        last = module._loss(on_gpu)[0].item()
    assert np.isfinite(last) and last < 0.5 * first, (first, last)

"""SONAR-SLT learns on held-out data: the pose encoder's cosine to unseen sentences' embeddings (signed by an unseen
signer) rises, and the decoder auto-encodes unseen sentences from their embeddings (chrF rises)."""

from __future__ import annotations

import pytest
import torch

from datamodules.sign import SignDataModule
from vision.sign.augment import PosePipeline
from vision.sign.evaluation import Scores, decode
from vision.sign.module import SignTranslationModule


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SignDataModule:
    from tests.slt_data import write_sign_corpus, write_tiny_encoder

    root = write_sign_corpus(tmp_path_factory.mktemp("signlearn"), n_train=96, pose_files=0)
    enc = write_tiny_encoder(root / "enc", root)
    return SignDataModule(f"{root}/train.jsonl", f"{root}/dev.jsonl", {"test": f"{root}/test.jsonl"}, str(enc),
                          str(root / "cache"), str(root / "tok.model"), PosePipeline(None),
                          vocab_size=120, batch_size=8, ae_batch_size=32)


def module(data: SignDataModule, **kw: object) -> SignTranslationModule:
    torch.manual_seed(0)
    net = {"encoder": {"d_model": 48, "part_dim": 24, "num_layers": 1, "num_heads": 2, "ffn_dim": 96},
           "decoder": {"d_model": 64, "num_layers": 1, "num_heads": 2, "ffn_dim": 128, "max_length": 24}}
    return SignTranslationModule(net, **data.model_kwargs(), queue_size=64, **kw)  # type: ignore[arg-type]


def held_out_cosine(m: SignTranslationModule, data: SignDataModule) -> float:
    m.eval()
    scores = Scores()
    with torch.no_grad():
        for batch in data.test_loaders()["test"]:
            pred = m.net.embed(batch["pose"], batch["pose_mask"])
            for lang, target in batch["targets"].items():
                scores.add(lang, ["x"] * len(pred), ["x"] * len(pred), pred, target)
    m.train()
    return scores.summary()["mean"]["cos"]


def test_pose_encoder_learns_the_embeddings_of_unseen_sentences(data: SignDataModule) -> None:
    m = module(data)
    before = held_out_cosine(m, data)
    opt = torch.optim.AdamW(m.net.encoder.parameters(), lr=5e-3)
    batches = [b["pose"] for b, _, _ in data.train_dataloader()]  # one draw of target languages, reused
    for _ in range(20):
        for pose in batches:
            loss = m.loss_fn(m.net.encoder(pose["pose"], pose["pose_mask"]), pose["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = held_out_cosine(m, data)
    assert after > before + 0.2, (before, after)


def test_decoder_auto_encodes_unseen_sentences(data: SignDataModule) -> None:
    from vision.sign.module import noisy, token_loss

    m = module(data)
    data.targets  # noqa: B018 (reads every split)
    rows = data.rows("test:test")
    refs = {lang: [r["texts"][lang] for r in rows] for lang in ("eng_Latn", "deu_Latn")}

    def chrf() -> float:
        m.eval()
        s = Scores()
        with torch.no_grad():
            for lang, texts in refs.items():
                emb = torch.stack([torch.from_numpy(data.targets.get(lang, t)) for t in texts])
                s.add(lang, decode(m.net.decoder, data.tokenizer, emb, lang, beam=2), texts)
        m.train()
        return s.summary()["mean"]["chrf"]

    before = chrf()
    opt = torch.optim.AdamW(m.net.decoder.parameters(), lr=3e-3)
    text = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(len(data.ae_keys()))),
                                       batch_size=32, shuffle=True)
    keys = data.ae_keys()
    for _ in range(12):
        for (idx,) in text:
            b = data.collate_text([keys[i] for i in idx.tolist()])
            loss = token_loss(m.net.decoder(noisy(b["emb"], 0.1), b["ids"], b["ids_mask"]), b["ids"], b["ids_mask"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = chrf()
    assert after > before + 15, (before, after)

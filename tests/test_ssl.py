"""wav2vec 2.0 pretraining: masks, distractors, quantizer, learning, the experiment and export -> ASR fine-tuning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hydra
import pytest
import torch

from speech.ssl.config import MaskConfig, ssl_objective_tiny, wav2vec2_tiny
from speech.ssl.hub import load_pretrained, save_pretrained
from speech.ssl.model import GumbelQuantizer, Wav2Vec2SSL, sample_negatives, span_mask
from tests.helpers import compose_cfg, load_script

TINY_ENCODER = {"conv_dims": (32,) * 7, "d_model": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64,
                "pos_conv_kernel": 8, "pos_conv_groups": 2, "dropout": 0.0, "attention_dropout": 0.0}
TINY_OVERRIDES = [f"+model.encoder.{k}={list(v) if isinstance(v, tuple) else v}" for k, v in TINY_ENCODER.items()
                  if k not in ("dropout", "attention_dropout")]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine more threads only wait on each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_net(seed: int = 0, **objective: object) -> Wav2Vec2SSL:
    torch.manual_seed(seed)
    obj = ssl_objective_tiny(**{"num_vars": 16, "codevector_dim": 32, "proj_dim": 32, "num_negatives": 10,
                                **objective})
    return Wav2Vec2SSL(wav2vec2_tiny(**TINY_ENCODER), obj)


def chirps(lens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded batch of distinct chirps with a little noise (zeros past each length)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(max(lens)) / 16_000
    wave = torch.stack([torch.sin(2 * torch.pi * f * t * (1 + 2 * t)) for f in (200.0, 450.0, 800.0)][: len(lens)])
    wave = wave + 0.05 * torch.randn(wave.shape, generator=g)
    lens_t = torch.tensor(lens)
    return wave * (torch.arange(max(lens))[None] < lens_t[:, None]), lens_t


def test_span_mask_share_spans_and_padding() -> None:
    lens = torch.tensor([400, 250, 40, 6, 0])
    cfg = MaskConfig(prob=0.65, length=10, min_spans=2)
    g = torch.Generator().manual_seed(0)
    share = []
    for _ in range(50):
        m = span_mask(lens, 400, cfg, g)
        assert m.shape == (5, 400)
        for b, n in enumerate(lens.tolist()):
            assert not m[b, n:].any(), "masked padding"
        assert m[3, :6].all()  # shorter than a span: masked whole
        # Every masked run is a union of whole spans, so no run is shorter than a span.
        row = torch.cat([torch.zeros(1, dtype=torch.bool), m[0], torch.zeros(1, dtype=torch.bool)]).int()
        starts, ends = (row.diff() == 1).nonzero().flatten(), (row.diff() == -1).nonzero().flatten()
        assert ((ends - starts) >= 10).all()
        share.append(m[0].float().mean().item())
    # prob 0.65 with overlapping spans covers about half (Baevski et al. report ~49%).
    assert 0.4 < sum(share) / len(share) < 0.6
    # With prob 0 only the minimum number of spans remains: 2 spans of 10 frames, maybe overlapping.
    for _ in range(20):
        count = int(span_mask(lens[:1], 400, MaskConfig(prob=0.0, length=10, min_spans=2), g).sum())
        assert 11 <= count <= 20 or count == 10


def test_negatives_exclude_positive_and_stay_in_utterance() -> None:
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(3, 30, dtype=torch.bool)
    mask[0, 2:14] = True
    mask[1, 5:6] = True  # a single masked frame: no distractor possible
    mask[2, [0, 7, 8, 29]] = True
    idx, ok = sample_negatives(mask, 300, g)
    utt = mask.nonzero()[:, 0]  # [N] utterance of each masked frame, in x[mask] order
    n = len(utt)
    assert idx.shape == (n, 300) and ok.tolist() == [u != 1 for u in utt.tolist()]
    own = torch.arange(n)[:, None]
    assert not (idx[ok] == own[ok]).any(), "the positive was drawn as a distractor"
    assert (utt[idx] == utt[:, None]).all(), "a distractor from another utterance"
    # Sampling reaches every other masked frame of the utterance.
    assert set(idx[0].tolist()) == set(range(1, 12))
    assert set(idx[-1].tolist()) == {n - 4, n - 3, n - 2}


def test_quantizer_shapes_and_perplexity_bounds() -> None:
    torch.manual_seed(0)
    q = GumbelQuantizer(in_dim=24, num_groups=2, num_vars=8, codevector_dim=16)
    x = torch.randn(500, 24)
    out, prob_ppl, code_ppl = q(x, temperature=2.0)
    assert out.shape == (500, 16)
    for ppl in (prob_ppl, code_ppl):
        assert 2.0 <= float(ppl) <= 16.0 + 1e-4
    # One frame repeated uses one code per group: the lowest perplexity.
    _, _, one = q(x[:1].expand(10, -1), temperature=2.0)
    assert float(one) == pytest.approx(2.0, abs=1e-3)
    # Each quantized vector is one codebook row per group, and gradients reach both the logits and the books.
    out.sum().backward()
    assert q.weight_proj.weight.grad is not None and q.codevectors.grad is not None
    q.eval()
    rows = q.codevectors.view(2, 8, 8)
    a, _, _ = q(x[:5], temperature=1.0)
    codes = q.weight_proj(x[:5]).view(5, 2, 8).argmax(-1)
    torch.testing.assert_close(a, torch.cat([rows[0, codes[:, 0]], rows[1, codes[:, 1]]], -1))


def test_loss_decreases_on_a_tiny_batch(one_thread: None) -> None:
    net = tiny_net()
    wave, lens = chirps([8_000, 6_000, 5_000])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses, contrastive = [], []
    for step in range(30):
        net.temperature = net.objective.temperature(step)
        out = net(wave, lens, generator=torch.Generator().manual_seed(step % 3))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        contrastive.append(out.contrastive.item())
        assert 0.0 <= out.accuracy.item() <= 1.0 and out.num_masked > 0
    assert sum(losses[-5:]) / 5 < 0.7 * losses[0]
    assert sum(contrastive[-5:]) / 5 < sum(contrastive[:5]) / 5


def test_conv_stack_gradient_is_scaled_whole_feature_penalty_included() -> None:
    """Every gradient into the conv stack, the feature penalty's too (as in fairseq), is times feature_grad_mult:
    an unscaled penalty outweighs the contrastive signal there and shrinks the features until the codebook
    collapses (seen on the generated corpus within 60 steps)."""
    wave, lens = chirps([8_000, 6_000])
    grads = []
    for mult in (1.0, 0.1):
        net = tiny_net(feature_grad_mult=mult, feature_penalty=10.0)
        torch.manual_seed(1)  # the same Gumbel noise
        net(wave, lens, generator=torch.Generator().manual_seed(0)).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.encoder.feature_extractor.parameters()]))
    assert float((grads[1] - 0.1 * grads[0]).norm() / (0.1 * grads[0]).norm()) < 1e-4


def test_objective_equals_transformers_pretraining_on_the_same_weights(tmp_path: Path) -> None:
    """The export loaded as transformers' Wav2Vec2ForPreTraining, given our mask and distractors, projects
    the same context and quantized vectors; its contrastive loss is ours once distractors that share the
    target's code are set to -inf, the one rule we leave out (test_collapsed_codebook_is_no_shortcut)."""
    from transformers import Wav2Vec2ForPreTraining

    from speech.encoders.wav2vec2 import lengths_mask

    net = tiny_net(num_vars=64).eval()
    hf = Wav2Vec2ForPreTraining.from_pretrained(save_pretrained(net, tmp_path / "ssl")).eval()
    wave, lens = chirps([8_000, 6_500])
    with torch.no_grad():
        feats, flens = net.encoder.extract_features(wave, lens)
        gen = torch.Generator().manual_seed(0)
        mask = span_mask(flens, feats.shape[1], net.objective.mask, gen)
        neg, ok = sample_negatives(mask, net.objective.num_negatives, gen)
        x, normed = net.encoder.project(feats)
        c = net.project_hid(net.encoder.contextualize(net.encoder.apply_mask(x, mask), flens)[mask])
        q = net.project_q(net.quantizer(normed[mask], 1.0)[0])
        ours = net(wave, lens, generator=torch.Generator().manual_seed(0))

        flat = mask.flatten().nonzero().squeeze(1)  # masked frame n -> its index in the flattened [B, T]
        hf_neg = torch.zeros(mask.numel(), neg.shape[1], dtype=torch.long)
        hf_neg[flat] = flat[neg]
        hf_wave = net.encoder.normalize(wave, lens)  # transformers leaves this to its feature extractor
        attention = lengths_mask(lens, wave.shape[1]).long()
        theirs = hf(hf_wave, attention_mask=attention, mask_time_indices=mask,
                    sampled_negative_indices=hf_neg.view(*mask.shape, -1))

        torch.testing.assert_close(theirs.projected_states[mask], c, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(theirs.projected_quantized_states[mask], q, atol=1e-5, rtol=1e-4)
        assert bool(ok.all())
        cands = torch.cat([q[:, None], q[neg]], 1)
        logits = torch.nn.functional.cosine_similarity(c[:, None], cands, dim=-1) / net.objective.logit_temp
        target = logits.new_zeros(len(logits), dtype=torch.long)
        assert ours.contrastive.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item(),
                                                        abs=1e-5)
        logits[:, 1:][(q[neg] == q[:, None]).all(-1)] = float("-inf")
        expected = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
        assert theirs.contrastive_loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_collapsed_codebook_is_no_shortcut() -> None:
    """One code for every frame makes target and distractors identical: chance-level loss, zero accuracy."""
    net = tiny_net().eval()
    with torch.no_grad():
        net.quantizer.weight_proj.weight.zero_()
        net.quantizer.weight_proj.bias.copy_(torch.arange(32.0))  # argmax: the last entry of each group
    wave, lens = chirps([8_000, 6_000])
    out = net(wave, lens, generator=torch.Generator().manual_seed(0))
    assert out.code_perplexity.item() == pytest.approx(2.0, abs=1e-4)
    assert out.contrastive.item() == pytest.approx(torch.log(torch.tensor(11.0)).item(), abs=1e-4)
    assert out.accuracy.item() == 0.0


def test_collapse_is_reported_once_after_consecutive_steps(caplog: pytest.LogCaptureFixture) -> None:
    from speech.ssl.module import COLLAPSE_STEPS, SSLModule

    module = SSLModule(wav2vec2_tiny(**TINY_ENCODER), tiny_net().objective)
    assert not any(module.watch_codebooks(2.0) for _ in range(COLLAPSE_STEPS - 1))
    assert not module.watch_codebooks(9.0)  # one healthy step restarts the count
    with caplog.at_level("WARNING", logger="speech.ssl.module"):
        fired = [module.watch_codebooks(2.0) for _ in range(3 * COLLAPSE_STEPS)]
    assert fired.count(True) == 1 and fired.index(True) == COLLAPSE_STEPS - 1
    assert "collapsed" in caplog.text and "model.lr" in caplog.text


def test_export_round_trip_and_transformers_layout(tmp_path: Path) -> None:
    net = tiny_net().eval()
    d = save_pretrained(net, tmp_path / "ssl")
    meta = json.loads((d / "config.json").read_text())
    assert meta["model_type"] == "wav2vec2" and meta["architectures"] == ["Wav2Vec2ForPreTraining"]
    again = load_pretrained(d)
    wave, lens = chirps([8_000, 6_000])
    a = net(wave, lens, generator=torch.Generator().manual_seed(0))
    b = again(wave, lens, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.loss, b.loss)

    from transformers import Wav2Vec2ForPreTraining

    hf, info = Wav2Vec2ForPreTraining.from_pretrained(str(d), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    hf.eval()
    with torch.no_grad():
        # transformers leaves input normalisation to its feature extractor (do_normalize).
        hidden = hf.wav2vec2(net.encoder.normalize(wave[:1, :8_000], lens[:1])).last_hidden_state
        ours, _ = net.encoder(wave[:1, :8_000], lens[:1])
    torch.testing.assert_close(hidden, ours, atol=1e-4, rtol=1e-4)


def test_experiment_runs_exports_and_initialises_asr(tiny_corpus: Path, tmp_path: Path) -> None:
    common = [f"data.train_manifest={tiny_corpus}/train.jsonl", f"data.val_manifest={tiny_corpus}/dev.jsonl",
              "data.num_workers=0", "trainer.accelerator=cpu", "trainer.precision=32-true", "logger=csv",
              "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", *TINY_OVERRIDES]
    out = tmp_path / "ssl"
    cfg = compose_cfg("train", ["experiment=ssl_pretrain", *common, "+trainer.fast_dev_run=2",
                                "model.objective.num_vars=16", "model.objective.codevector_dim=32",
                                "model.objective.proj_dim=32"], out)
    metrics = load_script("train").train(cfg)
    assert {"train/loss", "train/accuracy", "train/code_perplexity", "train/temperature"} <= metrics.keys()
    assert "val/loss" in metrics
    export = out / "model"
    assert json.loads((out / "metrics.json").read_text())["export_dir"] == str(export)
    pretrained = load_pretrained(export)

    # ASR fine-tuning starts from the exported encoder (init_encoder); the text-free manifest path is unused.
    asr_cfg = compose_cfg("train", ["model=asr_wav2vec2_tiny", *common, f"model.init_encoder={export}"],
                          tmp_path / "asr")
    datamodule = hydra.utils.instantiate(asr_cfg.data, _convert_="all")
    asr = hydra.utils.instantiate(asr_cfg.model, _convert_="all", **datamodule.model_kwargs())
    for k, v in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(asr.net.encoder.state_dict()[k], v)

    # Continued pretraining from the export starts from the same weights, heads included.
    cont_cfg = compose_cfg("train", ["experiment=ssl_pretrain", *common, f"model.init_encoder={export}",
                                     "model.objective.num_vars=16", "model.objective.codevector_dim=32",
                                     "model.objective.proj_dim=32"], tmp_path / "cont")
    cont = hydra.utils.instantiate(cont_cfg.model, _convert_="all")
    for k, v in pretrained.state_dict().items():
        torch.testing.assert_close(cont.net.state_dict()[k], v)


def test_audio_only_manifest_without_text(tmp_path: Path, tiny_corpus: Path) -> None:
    from datamodules.audio_only import AudioOnlyDataModule

    rows = [json.loads(line) for line in (tiny_corpus / "train.jsonl").read_text().splitlines()][:4]
    manifest = tmp_path / "audio.tsv"
    manifest.write_text("audio\n" + "".join(f"{tiny_corpus / r['audio']}\n" for r in rows))
    dm = AudioOnlyDataModule(train_manifest=str(manifest), num_workers=0, max_batch_seconds=1000, num_buckets=1)
    assert dm.model_kwargs() == {}
    batch = next(iter(dm.train_dataloader()))
    assert batch["wave"].shape[0] == 4 and batch["wave_lens"].max() == batch["wave"].shape[1]

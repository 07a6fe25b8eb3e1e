"""LLM-ASR: sequences and loss masks, language-token dropout, decoding, training via the real config, export, LID."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speech.asr.llm.config import DecoderLMConfig, LLMASRConfig
from speech.asr.llm.decode import LMStepper, beam_search, decode_prompts, greedy_search
from speech.asr.llm.hub import save_pretrained
from speech.asr.llm.infer import LLMTranscriber, read_context
from speech.asr.llm.model import LLMASR
from speech.asr.llm.module import LLMASRModule
from speech.asr.llm.tokens import AUDIO, IGNORE, ByteTokenizer, Segment, build_sequence, pad_sequences
from speech.encoders.conformer import ConformerConfig
from tests.helpers import compose_cfg, load_script, tiny_overrides
from text.normalize import normalize_transcript

LANGS = ["deu_Latn", "ukr_Cyrl"]
TINY_LM = ["+model.lm.d_model=32", "+model.lm.num_layers=1", "+model.lm.num_heads=2"]


def tiny_model(seed: int = 0) -> LLMASR:
    torch.manual_seed(seed)
    cfg = LLMASRConfig(langs=LANGS, encoder=ConformerConfig(d_model=32, num_layers=1, num_heads=2, conv_kernel=5),
                       lm=DecoderLMConfig(d_model=32, num_layers=2, num_heads=2), stack=2)
    return LLMASR(cfg).eval()


def waves(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(int(16_000 * (0.5 + 0.3 * i))).astype(np.float32) * 0.1 for i in range(n)]


def test_sequence_layout_and_loss_targets() -> None:
    tok = ByteTokenizer(LANGS)
    de = tok.lang_id("deu_Latn")
    ctx = [Segment(1, 2, de, tok.encode("ab")), Segment(2, 1, None, tok.encode("é"))]
    seq = build_sequence(tok, ctx, Segment(0, 3, de, tok.encode("hi")))
    A = AUDIO
    assert seq.ids == [
        tok.audio_id, A, A, tok.lid_id, de, tok.bos_id, 97, 98, tok.eos_id,
        tok.audio_id, A, tok.lid_id, tok.bos_id, 0xC3, 0xA9, tok.eos_id,
        tok.audio_id, A, A, A, tok.lid_id, de, tok.bos_id, 104, 105, tok.eos_id,
    ]
    assert seq.clip[1:3] == [1, 1] and seq.clip[10] == 2 and seq.clip[17:20] == [0, 0, 0]
    assert seq.frame[17:20] == [0, 1, 2]
    # Every utterance's language token, text and <eos> are targets; <bos> and audio are not.
    assert [t for t in seq.targets if t != IGNORE] == [de, 97, 98, tok.eos_id, 0xC3, 0xA9, tok.eos_id,
                                                      de, 104, 105, tok.eos_id]
    assert seq.targets.index(de) == 4 and seq.targets[21] == de
    prompt = build_sequence(tok, ctx, Segment(0, 3, None), "bos")
    assert prompt.ids[-3:] == [A, tok.lid_id, tok.bos_id] and all(t == IGNORE for t in prompt.targets)
    assert build_sequence(tok, [], Segment(0, 2, de), "lid").ids == [tok.audio_id, A, A, tok.lid_id]
    assert tok.decode([*tok.encode("Привіт"), tok.eos_id]) == "Привіт"


def test_compressed_audio_sits_at_the_positions_of_its_characters() -> None:
    tok = ByteTokenizer(LANGS)
    de = tok.lang_id("deu_Latn")
    ex = Segment(1, 2, None, tok.encode("ab"), offsets=[0, 1])
    seq = build_sequence(tok, [ex], Segment(0, 4, de, tok.encode("hés"), offsets=[0, 1, 2, 3]))
    starts = [i for i, t in enumerate(seq.ids) if t == tok.bos_id]
    for bos, clip, offsets in zip(starts, (1, 0), ([0, 1], [0, 1, 2, 3])):
        audio = [p for p, c in zip(seq.pos, seq.clip) if c == clip]
        assert audio == [seq.pos[bos] + 1 + o for o in offsets]  # character j of the text sits at <bos> + 1 + j
        assert seq.pos[bos] == seq.pos[seq.ids.index(tok.lid_id, bos - 4)] + 2  # with or without a language token
    # <audio> A A <lid> <bos> a b <eos>, then <audio> A A A A <lid> de <bos> h é(2 bytes, one position) s <eos>:
    # the two-byte letter doesn't push "s" off the audio embedding it was heard at.
    assert seq.pos == [0, 4, 5, 1, 3, 4, 5, 6, 7, 11, 12, 13, 14, 8, 9, 10, 11, 12, 12, 13, 14]
    # The prompt's positions match training's, so decoding continues where the text would start.
    prompt = build_sequence(tok, [ex], Segment(0, 4, de, offsets=[0, 1, 2, 3]), "bos")
    assert prompt.pos == seq.pos[: len(prompt.pos)]


def _batch(texts: list[str], langs: list[str], ctx: int = 0) -> dict[str, Any]:
    w = waves(len(texts) + ctx)
    lens = torch.tensor([len(x) for x in w])
    pad = torch.zeros(len(w), int(lens.max()))
    for i, x in enumerate(w):
        pad[i, : len(x)] = torch.from_numpy(x)
    n = len(texts)
    return {"wave": pad[:n], "wave_lens": lens[:n], "texts": texts, "langs": langs, "seconds": 1.0,
            "ctx_wave": pad[n:], "ctx_wave_lens": lens[n:], "ctx_counts": [ctx] + [0] * (n - 1),
            "ctx_texts": ["zu"] * ctx, "ctx_langs": [langs[0]] * ctx}


def test_decoding_step_by_step_gives_the_training_logits() -> None:
    """Feeding a transcript through the KV cache one byte at a time reproduces the logits of the whole training
    sequence: decoding puts each byte at the position training does (two-byte letters included)."""
    model = tiny_model()
    tok = model.tok
    audio = torch.randn(2, 4, model.cfg.lm.d_model)
    ex = Segment(1, 3, None, tok.encode("şa"), offsets=[0, 1, 2])
    text = tok.encode("ğüs ı")
    full = build_sequence(tok, [ex], Segment(0, 4, None, text, offsets=[0, 1, 2, 3]))
    prompt = build_sequence(tok, [ex], Segment(0, 4, None, offsets=[0, 1, 2, 3]), "bos")
    with torch.no_grad():
        seq = pad_sequences([full], tok.pad_id)
        logits, _ = model(model.embed(seq["ids"], seq["clip"], seq["frame"], audio), seq["pos"], None)
        p = pad_sequences([prompt], tok.pad_id, left=True)
        stepper = LMStepper(model, torch.ones(len(tok), dtype=torch.bool))
        first, _, state = stepper.prefill(model.embed(p["ids"], p["clip"], p["frame"], audio), p["pos"], p["mask"])
        got = [first]
        for t in text:
            logp, state = stepper.step(torch.tensor([t]), state)
            got.append(logp)
    n = len(prompt.ids)
    torch.testing.assert_close(torch.cat(got), logits[0, n - 1 : n + len(text)].log_softmax(-1), atol=1e-5, rtol=1e-4)
    assert state[2].tolist() == [full.pos[n + len(text) - 1]]


def test_lang_token_dropout_and_loss_mask() -> None:
    module = LLMASRModule(LANGS, encoder={"d_model": 32, "num_layers": 1, "num_heads": 2, "conv_kernel": 5},
                          lm={"d_model": 32, "num_layers": 1, "num_heads": 2}, stack=2)
    tok = module.net.tok
    batch = _batch(["ja", "так"], LANGS, ctx=2)
    enc = module._encode(batch)
    lang_ids = set(tok.lang_ids.values())
    kept = module._sequences(batch, enc, "eos", 0.0)
    assert [sum(t in lang_ids for t in s.ids) for s in kept] == [3, 1]  # two examples + the query
    dropped = module._sequences(batch, enc, "eos", 1.0)
    assert not any(t in lang_ids for s in dropped for t in s.ids)
    assert [t for t in dropped[1].targets if t != IGNORE] == [*tok.encode("так"), tok.eos_id]
    torch.manual_seed(0)
    shares = [any(t in lang_ids for t in s.ids) for _ in range(200)
              for s in module._sequences(batch, enc, "eos", 0.3)]
    assert 0.6 < sum(shares) / len(shares) < 0.8
    # Logits at non-target positions don't move the loss: it equals the CE over the targets alone.
    module.eval()
    loss = module._loss(batch, 0.0)
    seq = pad_sequences(module._sequences(batch, enc, "eos", 0.0), tok.pad_id)
    audio = module._encode(batch).audio
    logits, _ = module.net(module.net.embed(seq["ids"], seq["clip"], seq["frame"], audio), seq["pos"], seq["mask"])
    tgt = seq["targets"][:, 1:]
    keep = tgt != IGNORE
    manual = -logits[:, :-1].log_softmax(-1).gather(-1, tgt.clamp_min(0)[..., None])[..., 0][keep].mean()
    torch.testing.assert_close(loss, manual)
    # Two examples (lang, "zu", eos) and the query (lang, "ja", eos); lang, "так" (6 bytes), eos.
    assert int(keep.sum()) == 2 * 4 + 4 + 1 + 6 + 1


def test_left_padding_does_not_change_logits() -> None:
    model = tiny_model()
    tok = model.tok
    w = waves(2)
    from speech.features import pad_waves

    wave, lens = pad_waves(w)
    audio, alens, _ = model.encode_audio(wave, lens)
    prompts = [build_sequence(tok, [], Segment(b, int(alens[b]), tok.lang_id("deu_Latn")), "bos") for b in range(2)]
    with torch.no_grad():
        _, both = decode_prompts(model, prompts, audio, [5, 5])
        _, alone = decode_prompts(model, prompts[:1], audio, [5])
        n = alone.shape[1]
        torch.testing.assert_close(both[0, -n:], alone[0], atol=1e-5, rtol=1e-4)
        # Greedy text of an utterance doesn't depend on its batch neighbours.
        pair = decode_prompts(model, prompts, audio, [12, 12])[0]
        assert pair[0] == decode_prompts(model, prompts[:1], audio, [12])[0][0]


def test_beam_one_is_greedy_on_the_model() -> None:
    model = tiny_model(1)
    tok = model.tok
    from speech.features import pad_waves

    wave, lens = pad_waves(waves(3))
    with torch.no_grad():
        audio, alens, _ = model.encode_audio(wave, lens)
        prompts = [build_sequence(tok, [], Segment(b, int(alens[b]), None), "bos") for b in range(3)]
        batch = pad_sequences(prompts, tok.pad_id, left=True)
        x = model.embed(batch["ids"], batch["clip"], batch["frame"], audio)
        allowed = torch.zeros(len(tok), dtype=torch.bool)
        allowed[:256] = allowed[tok.eos_id] = True
        stepper = LMStepper(model, allowed)
        first, _, state = stepper.prefill(x, batch["pos"], batch["mask"])
        greedy = greedy_search(first, stepper.step, state, [20, 7, 15], tok.eos_id)
        beam1 = beam_search(first, stepper.step, state, stepper.reorder, [20, 7, 15], tok.eos_id, beam=1)
        beam4 = beam_search(first, stepper.step, state, stepper.reorder, [20, 7, 15], tok.eos_id, beam=4)
    assert beam1 == greedy
    assert [len(g) for g in greedy] == [20, 7, 15]  # an untrained model never says <eos> first
    assert all(len(b) <= m for b, m in zip(beam4, [20, 7, 15]))


class TableLM:
    """A constructed LM over tokens {0: 'a', 1: 'b', 2: eos}: log-probs looked up by the history."""

    def __init__(self, table: dict[tuple[int, ...], list[float]]):
        self.table = table

    def logp(self, hist: tuple[int, ...]) -> list[float]:
        return self.table.get(hist, [-20.0, -20.0, 0.0])

    def step(self, tokens: torch.Tensor, state: list[tuple[int, ...]]) -> tuple[torch.Tensor, Any]:
        state = [(*h, int(t)) for h, t in zip(state, tokens)]
        return torch.tensor([self.logp(h) for h in state]), state

    @staticmethod
    def reorder(state: list[tuple[int, ...]], rows: torch.Tensor) -> list[tuple[int, ...]]:
        return [state[int(r)] for r in rows]


def test_length_normalisation_changes_the_ranking() -> None:
    # Short: <eos> at once, log-prob -1.2 over 1 token. Long: "aaa" <eos>, -0.4 per token, -1.6 over 4.
    lm = TableLM({(): [-0.4, -20.0, -1.2], (0,): [-0.4, -20.0, -20.0], (0, 0): [-0.4, -20.0, -20.0],
                  (0, 0, 0): [-20.0, -20.0, -0.4]})
    first = torch.tensor([lm.logp(())])
    run = lambda beam, alpha: beam_search(first, lm.step, [()], lm.reorder, [10], 2, beam, alpha)
    assert run(2, 0.0) == [[]]  # raw sums: -1.2 beats -1.6
    assert run(2, 1.0) == [[0, 0, 0]]  # per token: -0.4 beats -1.2
    assert run(1, 1.0) == greedy_search(first, lm.step, [()], [10], 2) == [[0, 0, 0]]
    # max_len ends a hypothesis without <eos>.
    assert beam_search(first, lm.step, [()], lm.reorder, [2], 2, 2, 1.0) == [[0, 0]]
    assert math.isclose(sum(math.exp(v) for v in lm.logp(())), math.exp(-0.4) + math.exp(-20) + math.exp(-1.2))


def _write_manifest(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_identify_transcribe_and_context(tiny_corpus: Path, tmp_path: Path) -> None:
    model = tiny_model(2)
    save_pretrained(model, tmp_path / "m")
    rows = [json.loads(x) for x in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    ctx_rows = [{**r, "audio": str(tiny_corpus / r["audio"])} for r in rows if r["lang"] == "ukr_Cyrl"][:3]
    ctx = _write_manifest(tmp_path / "ctx.jsonl", ctx_rows)
    tr = LLMTranscriber.from_pretrained(tmp_path / "m", context=ctx, beam=2, max_bytes_per_second=5.0)
    w = waves(3)
    probs = tr.lang_probs(w)
    assert all(set(p) == set(LANGS) and 0.0 < sum(p.values()) <= 1.0 + 1e-6 for p in probs)
    ident = tr.identify(w)
    assert [lang for lang, _ in ident] == [max(p, key=p.__getitem__) for p in probs]
    texts = tr.transcribe(w, batch_size=2, lang="tur_Latn")
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert len(read_context(ctx)) == 3 and read_context(ctx)[0][1] == normalize_transcript(ctx_rows[0]["text"])
    too_many = _write_manifest(tmp_path / "big.jsonl", ctx_rows * 4)
    with pytest.raises(ValueError, match=r"big\.jsonl: a context manifest needs 1 to 10 examples, got 12"):
        read_context(too_many)


def test_fast_dev_run_via_real_config(tiny_corpus: Path, tmp_path: Path) -> None:
    # Every training utterance carries examples and is respelt: language "und", no language token.
    cfg = compose_cfg("train", ["experiment=asr_llm", "debug=fdr", *tiny_overrides(tiny_corpus), *TINY_LM,
                                "data.context_prob=1.0", "data.context_respell=1.0", "data.context_max_seconds=30"],
                      tmp_path)
    assert load_script("train").train(cfg)["train/loss"] > 0


def test_export_load_round_trip(tmp_path: Path) -> None:
    module = LLMASRModule(LANGS, encoder={"d_model": 32, "num_layers": 1, "num_heads": 2, "conv_kernel": 5},
                          lm={"d_model": 32, "num_layers": 1, "num_heads": 2}, stack=2).eval()
    module.export(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "asr_llm"
    tr = LLMTranscriber.from_pretrained(tmp_path / "m", beam=1, max_bytes_per_second=8.0)
    for k, v in module.net.state_dict().items():
        torch.testing.assert_close(v, tr.model.state_dict()[k])
    direct = LLMTranscriber(module.net, beam=1, max_bytes_per_second=8.0)
    w = waves(2)
    assert tr.transcribe_waves(w, ["deu_Latn", None]) == direct.transcribe_waves(w, ["deu_Latn", None])
    # A model trained when positions counted bytes carries their table; it is refused, not run wrongly.
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "m" / "model.safetensors"
    save_file({**load_file(str(weights)), "ctc_label_bytes": torch.ones(3, dtype=torch.long)}, str(weights))
    with pytest.raises(ValueError, match=r"m/model\.safetensors: trained when text positions counted bytes"):
        LLMTranscriber.from_pretrained(tmp_path / "m")


@pytest.mark.slow
def test_train_export_load_via_real_config(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = compose_cfg("train", ["experiment=asr_llm", *tiny_overrides(tiny_corpus), *TINY_LM, "trainer.max_epochs=1",
                                "trainer.max_time=null", "data.context_prob=1.0", "trainer.limit_val_batches=2",
                                "trainer.val_check_interval=1.0", "model.max_bytes_per_second=4"], out)
    metrics = load_script("train").train(cfg)
    assert "val_deu_Latn/cer" in metrics and "val/lid_acc" in metrics and "test/cer" in metrics
    model_dir = out / "model"
    tr = LLMTranscriber.from_pretrained(model_dir, beam=1)
    ckpt = LLMASRModule.load_from_checkpoint(json.loads((out / "metrics.json").read_text())["best_checkpoint"],
                                             map_location="cpu", weights_only=True)
    for k, v in ckpt.net.state_dict().items():
        torch.testing.assert_close(v, tr.model.state_dict()[k])


def test_frozen_encoder_has_no_dropout_or_gradients(tmp_path: Path) -> None:
    ctc = tmp_path / "ctc"
    from speech.asr.config import CTCModelConfig
    from speech.asr.hub import save_pretrained as save_ctc
    from speech.asr.model import CTCModel
    from text.char_vocab import CharVocab

    enc = ConformerConfig(d_model=32, num_layers=1, num_heads=2, conv_kernel=5, dropout=0.5)
    save_ctc(CTCModel(CTCModelConfig(vocab_size=8, encoder=enc)), CharVocab(list("abcde")), ctc)
    module = LLMASRModule(LANGS, init_encoder=str(ctc), lm={"d_model": 32, "num_layers": 1, "num_heads": 2})
    assert not module.net.encoder.training and all(not p.requires_grad for p in module.net.encoder.parameters())
    module.train()
    assert not module.net.encoder.training and module.net.lm.training
    from safetensors.torch import load_file

    ref = load_file(str(ctc / "model.safetensors"))
    torch.testing.assert_close(module.net.encoder.blocks[0].attn.qkv.weight, ref["encoder.blocks.0.attn.qkv.weight"])
    batch = _batch(["ja"], LANGS[:1])
    a1 = module._encode(batch).audio
    a2 = module._encode(batch).audio
    torch.testing.assert_close(a1, a2)  # deterministic: no encoder dropout


def test_transcribe_entry_point_dispatches_to_llm(tiny_corpus: Path, tmp_path: Path) -> None:
    from speech.asr.batch import collect_inputs, transcribe_to_file
    from speech.asr.infer import load_transcriber

    save_pretrained(tiny_model(3), tmp_path / "m")
    rows = [json.loads(x) for x in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    ctx = _write_manifest(tmp_path / "ctx.jsonl", [{**r, "audio": str(tiny_corpus / r["audio"])} for r in rows[:2]])
    tr = load_transcriber(tmp_path / "m", "cpu", decoder="auto", context=str(ctx), max_bytes_per_second=4.0)
    assert isinstance(tr, LLMTranscriber) and len(tr.context) == 2
    out = tmp_path / "hyp.jsonl"
    report = transcribe_to_file(tr, collect_inputs(tiny_corpus / "test.jsonl"), out, progress=False)
    hyps = [json.loads(x) for x in out.read_text().splitlines()]
    assert report.done == len(hyps) == len((tiny_corpus / "test.jsonl").read_text().splitlines())
    assert all(isinstance(h["text"], str) for h in hyps)


def test_ctc_compress_averages_label_runs_and_drops_blanks() -> None:
    from speech.asr.llm.model import ctc_compress

    hidden = torch.arange(12, dtype=torch.float32).view(2, 6, 1).repeat(1, 1, 2)  # frame t of row b holds 6b + t
    best = torch.tensor([[0, 3, 3, 0, 3, 5], [0, 0, 0, 0, 0, 0]])  # row 1 is all blank
    logits = F.one_hot(best, 6).float()
    logits[1, 4, 0] = 0.5  # the least-blank frame of the blank row
    out, counts, labels = ctc_compress(hidden, torch.tensor([6, 5]), logits)
    assert counts.tolist() == [3, 1] and labels.tolist() == [[3, 3, 5], [-1, -1, -1]]
    # Row 0: frames 1-2 (label 3) averaged; frame 4 is a new run of 3 (a blank came between); frame 5 is label 5.
    torch.testing.assert_close(out[0, :, 0], torch.tensor([1.5, 4.0, 5.0]))
    assert out[1, 0, 0] == 10.0  # 6 + 4
    # Padding frames never count, even when their label is not blank (frame 5 of row 0).
    out2, counts2, _ = ctc_compress(hidden, torch.tensor([5, 5]), F.one_hot(best, 6).float())
    assert counts2.tolist()[0] == 2 and out2[0, :2, 0].tolist() == [1.5, 4.0]


def test_ctc_compressed_model_loads_the_ctc_head_frozen_and_round_trips(tmp_path: Path) -> None:
    from speech.asr.config import CTCModelConfig
    from speech.asr.hub import save_pretrained as save_ctc
    from speech.asr.model import CTCModel
    from text.char_vocab import CharVocab

    ctc_dir = tmp_path / "ctc"
    ctc = CTCModel(CTCModelConfig(vocab_size=8, encoder=ConformerConfig(d_model=32, num_layers=1, num_heads=2,
                                                                       conv_kernel=5)))
    save_ctc(ctc, CharVocab(list("abcde")), ctc_dir)
    with pytest.raises(ValueError, match="ctc_compress needs a frozen CTC model"):
        LLMASRModule(LANGS, ctc_compress=True)
    broken = tmp_path / "broken"  # a CTC directory whose vocabulary doesn't match its head
    save_ctc(ctc, CharVocab(list("ab")), broken)
    with pytest.raises(ValueError, match=r"broken/vocab\.json: 5 labels, the CTC head has 8"):
        LLMASRModule(LANGS, init_encoder=str(broken), ctc_compress=True)
    (broken / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"broken/vocab\.json"):
        LLMASRModule(LANGS, init_encoder=str(broken), ctc_compress=True)
    module = LLMASRModule(LANGS, init_encoder=str(ctc_dir), ctc_compress=True, stack=1,
                          lm={"d_model": 32, "num_layers": 1, "num_heads": 2})
    head = module.net.ctc_head
    assert head is not None and not head.weight.requires_grad
    torch.testing.assert_close(head.weight, ctc.head.weight)
    batch = _batch(["ja", "nein"], LANGS[:1] * 2)
    enc = module._encode(batch)
    alens = enc.lens
    feats, flens = module.net.frontend(batch["wave"], batch["wave_lens"])
    hidden, hlens = module.net.encoder(feats, flens)
    labels = ctc.head(hidden).argmax(-1)
    for b in range(2):  # one embedding per run of a non-blank label (at least one), at its label's character
        lab = labels[b, : hlens[b]].tolist()
        runs = [x for t, x in enumerate(lab) if x != 0 and (t == 0 or lab[t - 1] != x)]
        assert int(alens[b]) == max(len(runs), 1)
        assert enc.offsets is not None and enc.offsets[b, : len(runs)].tolist() == list(range(len(runs)))
    module.export(tmp_path / "m")
    tr = LLMTranscriber.from_pretrained(tmp_path / "m", beam=1, max_bytes_per_second=8.0)
    assert tr.model.cfg.ctc_vocab == 8
    w = waves(2)
    direct = LLMTranscriber(module.net.eval(), beam=1, max_bytes_per_second=8.0)
    assert tr.transcribe_waves(w) == direct.transcribe_waves(w)

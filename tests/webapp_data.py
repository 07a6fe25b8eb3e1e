"""Tiny random-weight models for the web app's tests, saved through the hub as a user's models folder would hold
them: a CTC recogniser with a language-ID head, a TTS bundle, a source tracer, a FLAME retrieval index over a few
images, a CLaMP 3 index over a few tunes, and a sign translator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from common.retrieval.folder import index_folder
from speech.asr.config import CTCModelConfig, conformer
from speech.asr.hub import save_pretrained as save_ctc
from speech.asr.lid import LIDConfig, LIDHead, save_lid
from speech.asr.model import CTCModel
from tests.clamp_data import have_renderers
from tests.flame_llm import write_tiny_llm
from tests.test_tts_synth import voice, write_model
from text.char_vocab import CharVocab
from vision.flame.config import flame_tiny
from vision.flame.hub import save_pretrained as save_flame
from vision.flame.model import FlameModel

SR = 16_000
ASR_LANGS = {"eng_Latn": "abcdefghij", "deu_Latn": "abcdefg"}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (30, 60, 220), "yellow": (230, 220, 40)}


def write_asr(out: Path) -> Path:
    """A tiny conformer CTC model whose head never picks blank, so even random weights write words, plus a LID head
    over its two languages."""
    torch.manual_seed(0)
    vocab = CharVocab(list("abcdefghij"), ASR_LANGS)
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab),
                                    encoder=conformer(d_model=32, num_layers=1, num_heads=2, conv_kernel=5)))
    with torch.no_grad():
        model.head.bias[:2] = -8.0  # blank and unknown: the greedy path always writes a character
        model.head.bias[2] = 0.6  # space often enough for several words
    save_ctc(model, vocab, out, langs=sorted(ASR_LANGS))
    save_lid(LIDHead(LIDConfig(d_model=32, langs=sorted(ASR_LANGS), attn_dim=8, hidden=16)), out)
    return out


def write_flame_index(root: Path) -> tuple[Path, Path, Path]:
    """A tiny FLAME (random ViT and LLM) and its index over four coloured squares and a text file:
    (model dir, index dir, media folder)."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    for name, rgb in COLOURS.items():
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = rgb
        img[8:24, 8:24] = 255 - np.asarray(rgb, np.uint8)  # a square in the middle, so images differ in shape too
        Image.fromarray(img).save(media / f"{name}.png")
    (media / "notes.txt").write_text("a red square on black\nfour colourful tiles\n", encoding="utf-8")
    llm = write_tiny_llm(root / "llm")
    torch.manual_seed(0)
    model = FlameModel(flame_tiny(embed_dim=32, llm_dir=str(llm), image_size=32, patch_size=8, depth=1, width=32,
                                  heads=2, projector_hidden=32))
    flame = save_flame(model, root / "models" / "flame")
    index = root / "models" / "photos_index"
    index_folder(media, index, flame, progress=False)
    return flame, index, media


def write_models(root: Path) -> tuple[Path, list[Path]]:
    """A models folder with one of each (asr/, tts/, tracer/, flame/, photos_index/, music_index/, sign/) and the
    uploads the tracer is calibrated on (``root/inputs``): (models folder, media folders)."""
    write_asr(root / "models" / "asr")
    write_model(root / "models" / "tts")
    write_tracer(root / "models" / "tracer", root / "inputs")
    write_sign(root / "models" / "sign", root / "inputs")
    _, _, media = write_flame_index(root)
    if not have_renderers(audio=True):  # abc2midi and fluidsynth make the tunes: without them, no music index
        return root / "models", [media]
    _, music = write_music_index(root)
    return root / "models", [media, music]


def write_inputs(out: Path) -> dict[str, Path]:
    """Files a person would upload: speech, a voice prompt, and broken ones of each kind."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"speech": out / "speech.wav", "prompt": out / "prompt.wav", "short": out / "short.wav",
             "corrupt": out / "corrupt.wav", "wrong": out / "table.csv", "broken_png": out / "broken.png"}
    sf.write(files["speech"], voice(1.5, f0=120.0, seed=1), SR)
    sf.write(files["prompt"], voice(1.6), SR)
    sf.write(files["short"], voice(0.3), SR)
    files["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    files["wrong"].write_text("a,b\n1,2\n", encoding="utf-8")
    files["broken_png"].write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    files["broken_abc"] = out / "broken.abc"
    files["broken_abc"].write_text("no music here\n", encoding="utf-8")
    files["bad_npy"] = out / "points.npy"
    np.save(files["bad_npy"], np.zeros((4, 10, 4), np.float32))  # 10 points, not the 543 of the Holistic layout
    files["bad_pose"] = out / "broken.pose"
    files["bad_pose"].write_bytes(b"\x00\x01 not a pose file")
    files["empty"] = out / "empty.npy"
    files["empty"].write_bytes(b"")
    return files


def write_tracer(out: Path, inputs: Path) -> Path:
    """A tiny source tracer whose heads are fitted in closed form to its random embeddings of a few clips per known
    source, and whose open-set score is the distance to the nearest of those clips (the upload ``traced.wav``
    among them), so ``traced.wav`` is a known source and ``clicks.wav`` (a generator it never saw) is unknown."""
    from speech.source_trace.calibration import Calibration
    from speech.source_trace.config import lfcc, resnet18_tiny, source_tracer
    from speech.source_trace.hub import save_pretrained as save_tracer
    from speech.source_trace.model import SourceTracerNet
    from tests.source_trace_data import GENERATORS, KNOWN, UNKNOWN_SOURCE, clip

    families = sorted({GENERATORS[s][0] for s in KNOWN})
    torch.manual_seed(0)
    net = SourceTracerNet(source_tracer(lfcc(), resnet18_tiny(width=8), embed_dim=16, sources=KNOWN,
                                        families=families)).eval()
    inputs.mkdir(parents=True, exist_ok=True)
    sf.write(inputs / "traced.wav", clip("harmonic_synth", 1), SR)
    sf.write(inputs / "clicks.wav", clip(UNKNOWN_SOURCE, 2), SR)
    waves = [sf.read(inputs / "traced.wav", dtype="float32")[0]] + [clip(s, 10 + i) for s in KNOWN for i in range(2)]
    labels = ["harmonic_synth"] + [s for s in KNOWN for _ in range(2)]
    with torch.no_grad():
        emb = torch.cat([net.embed(torch.from_numpy(w)[None], torch.tensor([len(w)])) for w in waves])  # [N, 16]
        unknown = net.embed(*(lambda w: (torch.from_numpy(w)[None], torch.tensor([len(w)])))(
            sf.read(inputs / "clicks.wav", dtype="float32")[0]))
        x = torch.cat([emb - emb.mean(0), torch.ones(len(emb), 1)], 1).double()  # [N, 17]
        for head, classes, of in ((net.source_head, KNOWN, lambda s: s),
                                  (net.family_head, families, lambda s: GENERATORS[s][0])):
            target = torch.full((len(emb), len(classes)), -4.0, dtype=torch.float64)
            target[torch.arange(len(emb)), [classes.index(of(s)) for s in labels]] = 4.0
            w = torch.linalg.solve(x.T @ x + 1e-6 * torch.eye(x.shape[1], dtype=torch.float64), x.T @ target)
            head.weight.copy_(w[:-1].T.float())
            head.bias.copy_((w[-1] - emb.mean(0).double() @ w[:-1]).float())
    cal = Calibration(score="knn", k=1, bank=emb.contiguous())
    gap = float(cal.known_score(torch.zeros(1, len(KNOWN)), unknown)[0])  # the unknown clip's score; own clip: ~0
    cal.threshold = gap / 2
    return save_tracer(net, cal, out)


def write_sign(out: Path, inputs: Path) -> Path:
    """A tiny random sign translator writing English and German, and pose files to upload (``sign.npy``,
    ``sign.pose``). Its output embeddings keep only whole-word pieces (and end-of-sentence), so even random weights
    write words, not stray bytes."""
    from tests.slt_data import WORDS, sign_clip
    from text.tokenizer import EOS_ID, SentencePieceTokenizer
    from vision.sign.config import slt_tiny
    from vision.sign.hub import save_pretrained as save_slt
    from vision.sign.model import SignTranslationModel
    from vision.sign.pose_io import PoseClip, write_pose_file

    inputs.mkdir(parents=True, exist_ok=True)
    texts = [" ".join(WORDS[lang][i : i + 3]) for lang in SIGN_LANGS for i in range(6)] * 3
    tok = SentencePieceTokenizer.train(texts, inputs.parent / "slt_tok.model", vocab_size=300, langs=SIGN_LANGS)
    torch.manual_seed(0)
    sizes = {"enc_d_model": 32, "enc_part_dim": 16, "enc_num_layers": 1, "enc_num_heads": 2, "enc_ffn_dim": 64,
             "dec_d_model": 32, "dec_num_layers": 1, "dec_num_heads": 2, "dec_ffn_dim": 64, "dec_max_length": 6}
    model = SignTranslationModel(slt_tiny(16, len(tok), SIGN_LANGS, **sizes))
    pieces = [tok.sp.id_to_piece(i) for i in range(tok.sp.get_piece_size())]
    words = torch.tensor([p.startswith("\u2581") and len(p) > 2 for p in pieces] + [False] * (len(tok) - len(pieces)))
    with torch.no_grad():
        emb = model.decoder.tok_emb.weight  # tied to the output layer
        emb[~words & (torch.arange(len(emb)) != EOS_ID)] = 0.0
        emb[words] *= 10.0
    arr = sign_clip((0, 5), 0, np.random.default_rng(0), frames=8).astype(np.float32)  # [16, 543, 4]
    np.save(inputs / "sign.npy", arr)
    write_pose_file(PoseClip(arr[..., :3], arr[..., 3]), inputs / "sign.pose")
    return save_slt(model, tok, out)


SIGN_LANGS = ["deu_Latn", "eng_Latn"]


def write_music_index(root: Path) -> tuple[Path, Path]:
    """A tiny random CLaMP 3 and its index over two tunes as ABC, MIDI and audio: (index dir, music folder)."""
    import shutil

    from common.retrieval.folder import index_folder
    from tests.clamp_data import write_music_corpus, write_tiny_model

    corpus = write_music_corpus(root / "music_corpus", n_train=6, n_test=0, audio=True)
    model = write_tiny_model(root / "clamp", corpus)
    music = root / "music"
    music.mkdir(parents=True, exist_ok=True)
    for sub, ext in (("abc", "abc"), ("midi", "mid"), ("audio", "wav")):
        for tid in ("t000", "t001"):
            shutil.copy(corpus / sub / f"{tid}.{ext}", music / f"{tid}.{ext}")
    index = root / "models" / "music_index"
    index_folder(music, index, model, progress=False)
    return index, music

"""Batch transcription throughput: the suite's Transcriber vs the transformers ASR pipeline, same checkpoint.

    python benchmarks/hf_pipeline_throughput.py [model=<Wav2Vec2ForCTC dir>] [n=300] [batch_size=8]
        [hf_batch_size=1] [min_s=1] [max_s=30] [threads=0] [out=runs/bench/hf_pipeline_throughput.json]

Without ``model=`` a wav2vec2-base-sized random Wav2Vec2ForCTC is built once into runs/bench/. The N files
(mixed 1-30 s) are data/speech/**/*.wav clips concatenated, or synthetic audio when there are none. Each side
runs in its own subprocess, so its peak RSS (getrusage in the child) is its own: the suite imports the
checkpoint (``speech.asr.interop.hf.load_hf``) and transcribes batched by length; the pipeline gets the
same file paths (it decodes them with ffmpeg) and its default batch size of 1, since wav2vec2-base
(group norm) has no padding mask in transformers. Transcripts are compared exactly and after removing
special-token strings and repeated spaces (the suite drops <unk>/<s>/</s>; transformers prints them).
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "runs" / "bench"
TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]


def build_random_base(out: Path) -> Path:
    """A wav2vec2-base-sized Wav2Vec2ForCTC with random weights, saved with tokenizer and feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    if (out / "model.safetensors").is_file():
        return out
    torch.manual_seed(0)
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(TOKENS)}))
    model = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(TOKENS), pad_token_id=0)).eval()
    with torch.no_grad():  # a confident head, as trained models have, so argmax ties are rare
        model.lm_head.weight.normal_(0.0, 0.5)
        model.lm_head.bias[0] = 2.0  # blank-heavy like a trained CTC model
        model.lm_head.bias[1:4] = -1e4  # <s>, </s>, <unk> never win (transformers would print them)
    model.save_pretrained(tmp)
    Wav2Vec2CTCTokenizer(str(tmp / "vocab.json")).save_pretrained(tmp)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(tmp)
    tmp.rename(out)
    return out


def make_files(n: int, min_s: float, max_s: float, out: Path) -> list[Path]:
    """N wav files of uniformly mixed durations, from concatenated corpus clips (or synthetic audio)."""
    from speech.audio import load_audio, write_audio

    paths = [out / f"utt_{i:04d}.wav" for i in range(n)]
    if all(p.is_file() for p in paths):
        return paths
    rng = np.random.default_rng(0)
    clips = sorted((ROOT / "data" / "speech").glob("**/*.wav"))
    rng.shuffle(clips)  # type: ignore[arg-type]
    clip_iter = iter(clips)
    for p, dur in zip(paths, rng.uniform(min_s, max_s, n)):
        need, parts = int(dur * 16_000), []
        while need > 0:
            clip = next(clip_iter, None)
            if clip is None:  # synthetic: noise with a few tones
                t = np.arange(min(need, 48_000)) / 16_000
                wav = (0.05 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * rng.uniform(100, 800) * t))
                wav = wav.astype(np.float32)
            else:
                wav = load_audio(clip)
            parts.append(wav[:need])
            need -= len(parts[-1])
        write_audio(p, np.concatenate(parts))
    return paths


def run_side(side: str, model: str, files: list[str], batch_size: int, threads: int) -> dict[str, Any]:
    """Load and transcribe in this process; report times, transcripts and peak RSS."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    if side == "suite":
        from speech.asr.infer import Transcriber
        from speech.asr.interop.hf import load_hf

        transcriber = Transcriber(*load_hf(model), decoder="greedy")
        t1 = time.perf_counter()
        texts = transcriber.transcribe(files, batch_size=batch_size)
    else:
        from transformers import pipeline

        pipe = pipeline("automatic-speech-recognition", model=model, device=-1)
        t1 = time.perf_counter()
        texts = [o["text"] for o in pipe(files, batch_size=batch_size)]
    t2 = time.perf_counter()
    return {"side": side, "load_s": t1 - t0, "wall_s": t2 - t1, "texts": texts, "threads": torch.get_num_threads(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "batch_size": batch_size}


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"<unk>|<s>|</s>|<pad>", "", text).split())


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    if "side" in args:  # child process
        files = json.loads(Path(args["files"]).read_text())
        result = run_side(args["side"], args["model"], files, int(args["batch_size"]), int(args["threads"]))
        Path(args["result"]).write_text(json.dumps(result, ensure_ascii=False))
        return
    from common.io import atomic_open
    from speech.audio import audio_duration

    n, min_s, max_s = int(args.get("n", 300)), float(args.get("min_s", 1)), float(args.get("max_s", 30))
    model = Path(args["model"]) if "model" in args else build_random_base(BENCH / "wav2vec2_base_random")
    files = make_files(n, min_s, max_s, BENCH / f"audio_{n}_{min_s:g}-{max_s:g}s")
    audio_s = sum(audio_duration(f) for f in files)
    (BENCH / "files.json").write_text(json.dumps([str(f) for f in files]))
    sides = {"suite": int(args.get("batch_size", 8)), "transformers": int(args.get("hf_batch_size", 1))}
    results = {}
    for side, bs in sides.items():
        res_path = BENCH / f"result_{side}.json"
        cmd = [sys.executable, __file__, f"side={side}", f"model={model}", f"files={BENCH / 'files.json'}",
               f"batch_size={bs}", f"threads={args.get('threads', 0)}", f"result={res_path}"]
        subprocess.run(cmd, check=True, cwd=ROOT)
        results[side] = json.loads(res_path.read_text())
    s, h = results["suite"], results["transformers"]
    exact = sum(a == b for a, b in zip(s["texts"], h["texts"]))
    normalised = sum(_normalise(a) == _normalise(b) for a, b in zip(s["texts"], h["texts"]))
    summary: dict[str, Any] = {"model": str(model), "files": n, "audio_s": audio_s, "sides": {}}
    print(f"{n} files, {audio_s / 60:.1f} min of audio, model {model}, {s['threads']} threads")
    print(f"{'side':<13} {'batch':>5} {'load s':>7} {'wall s':>8} {'RTF':>7} {'audio-s/s':>10} {'peak RSS MB':>12}")
    for side, r in results.items():
        row = {k: r[k] for k in ("load_s", "wall_s", "peak_rss_mb", "batch_size", "threads")}
        row |= {"rtf": r["wall_s"] / audio_s, "audio_s_per_s": audio_s / r["wall_s"]}
        summary["sides"][side] = row
        print(f"{side:<13} {r['batch_size']:>5} {r['load_s']:>7.1f} {r['wall_s']:>8.1f} {row['rtf']:>7.4f} "
              f"{row['audio_s_per_s']:>10.1f} {r['peak_rss_mb']:>12.0f}")
    summary["speedup"] = h["wall_s"] / s["wall_s"]
    summary["rss_ratio"] = s["peak_rss_mb"] / h["peak_rss_mb"]
    summary["identical"] = exact
    summary["identical_normalised"] = normalised
    summary["examples"] = [{"suite": a, "transformers": b} for a, b in zip(s["texts"][:3], h["texts"][:3])]
    print(f"suite speed-up {summary['speedup']:.2f}x, peak RSS suite/transformers {summary['rss_ratio']:.2f}; "
          f"transcripts identical {exact}/{n}, after normalising specials and spaces {normalised}/{n}")
    out = Path(args.get("out", BENCH / "hf_pipeline_throughput.json"))
    with atomic_open(out, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:])

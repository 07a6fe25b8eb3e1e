"""Batch transcription throughput: the suite vs the transformers ASR pipeline, same Wav2Vec2ForCTC checkpoint.

    python benchmarks/hf_pipeline_throughput.py [model=<Wav2Vec2ForCTC dir>] [n=300] [min_s=1] [max_s=30]
        [modes=fp32,bf16,int8] [max_batch_seconds=120] [hf_batch_size=1] [threads=2] [device=cpu|cuda]
        [out=runs/bench/hf_pipeline_throughput.json] [profile=fp32|bf16|int8]

``profile=<mode>`` profiles the suite alone in that mode on the same files (cProfile, the twelve costliest calls
by own time) and prints the fp32 ceiling, instead of comparing.

The fp32 ceiling (``fp32_ceiling``, printed after the comparison too): the checkpoint's matmul and convolution
FLOPs per audio second over the fastest fp32 matmul rate measured on this CPU (torch's BLAS or oneDNN) bound
what any fp32 implementation, this suite's included, can reach here.

Without ``model=`` a wav2vec2-base-sized random Wav2Vec2ForCTC is built once into runs/bench/ (random
weights: the agreement of the reduced-precision modes is measured on it, not on a trained model). The N
files (mixed ``min_s``-``max_s`` s) are data/speech/**/*.wav clips concatenated, or synthetic audio when
there are none. Every side runs in its own subprocess with ``threads`` torch threads, so its peak RSS
(getrusage in the child) is its own, and each is warmed up on one second of audio before the clock starts.

- suite (``modes``: fp32 is exact; bf16 autocast and int8 dynamically quantised linear layers are the
  optional modes of ``speech.asr.precision.with_precision``, never defaults): the checkpoint imported with
  ``speech.asr.interop.hf.load_hf`` and transcribed by the suite's batch path (``transcribe_to_file``, as
  scripts/transcribe.py runs it): files read batch by batch, batches formed by length and capped at
  ``max_batch_seconds`` of padded audio.
- transformers: ``pipeline("automatic-speech-recognition")`` on the same paths, default batch size 1, since
  wav2vec2-base (group norm) has no padding mask in transformers. The pipeline decodes each file with ffmpeg;
  where there is no ffmpeg (the GPU machine), it is given the soundfile-decoded arrays, read inside the clock.

``device=cuda`` runs both sides on the GPU (transformers' pipeline with ``device=0``, the suite's transcriber
with ``device="cuda"``; int8 is CPU-only) and reports each side's peak GPU memory (``torch.cuda.max_memory_allocated``)
beside its RSS; the fp32 ceiling is a CPU figure and is left out there.

Transcripts are compared with the transformers fp32 ones exactly and after removing special-token strings
and repeated spaces (the suite drops <unk>/<s>/</s>; transformers prints them).
Known difference: the suite collapses runs of spaces, while transformers can print two word delimiters in a row
(1 of 300 files in the last run: "arpx  xjxvnn"), so that transcript matches only after normalising.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
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


def _suite(model: str, mode: str, max_batch_seconds: float, device: str = "cpu") -> tuple[Any, Any]:
    """Load the suite's transcriber in ``mode``; return it and a function that transcribes paths in order."""
    import tempfile

    from speech.asr.batch import Item, transcribe_to_file
    from speech.asr.infer import Transcriber
    from speech.asr.interop.hf import load_hf

    model_, vocab = load_hf(model)
    transcriber = Transcriber(model_, vocab, device, decoder="greedy", precision=mode)  # type: ignore[arg-type]

    def run(paths: list[str]) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.jsonl"
            transcribe_to_file(transcriber, [Item(p, p) for p in paths], out, max_batch_seconds=max_batch_seconds,
                               num_workers=0, progress=False, lang_alphabet=False)
            rows = {r["audio"]: r["text"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
        return [rows[p] for p in paths]

    return transcriber, run


def run_side(side: str, model: str, files: list[str], args: dict[str, str]) -> dict[str, Any]:
    """Load, warm up and transcribe in this process; report times, transcripts and peak RSS."""
    import torch

    from speech.audio import write_audio

    torch.set_num_threads(int(args["threads"]))
    t0 = time.perf_counter()
    if side == "transformers":
        import soundfile as sf
        from transformers import pipeline

        pipe = pipeline("automatic-speech-recognition", model=model, device=0 if args["device"] == "cuda" else -1)
        batch = int(args["hf_batch_size"])

        def run(paths: list[str]) -> list[str]:
            if shutil.which("ffmpeg"):  # the pipeline's own path: it decodes each file with ffmpeg
                return [o["text"] for o in pipe(paths, batch_size=batch)]
            arrays = ({"raw": sf.read(p, dtype="float32")[0], "sampling_rate": 16_000} for p in paths)
            return [o["text"] for o in pipe(arrays, batch_size=batch)]
    else:
        _, run = _suite(model, side.removeprefix("suite_"), float(args["max_batch_seconds"]), args["device"])
        batch = 0
    warm = BENCH / "warmup_1s.wav"
    write_audio(warm, np.random.default_rng(1).standard_normal(16_000).astype(np.float32) * 0.1)
    t1 = time.perf_counter()
    run([str(warm)])
    t2 = time.perf_counter()
    rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    texts = run(files)
    t3 = time.perf_counter()
    return {"side": side, "load_s": t1 - t0, "warmup_s": t2 - t1, "wall_s": t3 - t2, "texts": texts,
            "threads": torch.get_num_threads(), "rss_ready_mb": rss_ready, "batch": batch,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if args["device"] == "cuda" else None}


def profile_suite(model: str, mode: str, files: list[str], args: dict[str, str]) -> None:
    """cProfile of the suite transcribing ``files`` in ``mode`` (after a warm-up): the costliest calls, by own time."""
    import cProfile
    import pstats

    import torch

    torch.set_num_threads(int(args["threads"]))
    _, run = _suite(model, mode, float(args["max_batch_seconds"]))
    run(files[:1])
    prof = cProfile.Profile()
    prof.runcall(run, files)
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    print_ceiling(fp32_ceiling(model, int(args["threads"])))


def gemm_rates() -> dict[str, float]:
    """GFLOP/s of one feed-forward-sized matmul (3000x768 @ 768x3072) in this process: fp32 through torch's
    BLAS (what ``nn.Linear`` calls), fp32 through oneDNN (the fastest fp32 kernel found here) and bf16."""
    import torch

    x, w = torch.randn(3000, 768), torch.randn(3072, 768)
    kernels = {"fp32 (BLAS)": lambda: torch.nn.functional.linear(x, w),
               "bf16 (BLAS)": lambda: torch.nn.functional.linear(x.bfloat16(), w.bfloat16())}
    if torch.backends.mkldnn.is_available():
        kernels["fp32 (oneDNN)"] = lambda: torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    rates = {}
    for name, kernel in kernels.items():
        kernel()
        start = time.perf_counter()
        for _ in range(5):
            kernel()
        rates[name] = 2 * 3000 * 768 * 3072 / ((time.perf_counter() - start) / 5) / 1e9
    return rates


def fp32_ceiling(model: str, threads: int) -> dict[str, float]:
    """The most audio seconds a second that any fp32 implementation of the checkpoint could transcribe here:
    the best fp32 matmul rate of this CPU over the model's FLOPs per audio second (matmuls and convolutions
    counted by ``torch.utils.flop_counter`` on 10 s of audio; attention scores, norms and activations left
    out, so the true ceiling is lower still)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from speech.asr.interop.hf import load_hf

    torch.set_num_threads(threads)
    model_, _ = load_hf(model)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model_.eval()(torch.randn(1, 160_000), torch.tensor([160_000]))
    gflop = counter.get_total_flops() / 10 / 1e9
    rates = gemm_rates()
    best = max(r for name, r in rates.items() if name.startswith("fp32"))
    return {"gflop_per_audio_s": gflop, **{f"gflops {k}": v for k, v in rates.items()},
            "fp32_ceiling_audio_s_per_s": best / gflop}


def print_ceiling(ceiling: dict[str, float], reference: float | None = None) -> None:
    """Print ``fp32_ceiling``, and what it is as a multiple of ``reference`` audio-s/s (the transformers side)."""
    for name, rate in ceiling.items():
        if name.startswith("gflops "):
            print(f"bare 3000x768 @ 768x3072 matmul, {name.removeprefix('gflops ')}: {rate:.0f} GFLOP/s")
    top = ceiling["fp32_ceiling_audio_s_per_s"]
    print(f"fp32 ceiling: {ceiling['gflop_per_audio_s']:.1f} GFLOP per audio second (matmuls and convolutions) "
          f"at the best fp32 matmul rate allows at most {top:.2f} audio-s/s"
          + (f", {top / reference:.2f}x the transformers side" if reference else ""))


def _cer(hyps: list[str], refs: list[str]) -> float:
    """Character error rate of ``hyps`` against ``refs``, summed over the corpus."""
    from common.metrics import error_counts

    counts = [error_counts(h, r)[:2] for h, r in zip(hyps, refs)]
    return sum(e for e, _ in counts) / max(1, sum(n for _, n in counts))


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"<unk>|<s>|</s>|<pad>", "", text).split())


def main(argv: list[str]) -> None:
    args = {"threads": "2", "hf_batch_size": "1", "max_batch_seconds": "120", "device": "cpu",
            **dict(a.split("=", 1) for a in argv)}
    if "side" in args:  # child process
        files = json.loads(Path(args["files"]).read_text())
        result = run_side(args["side"], args["model"], files, args)
        Path(args["result"]).write_text(json.dumps(result, ensure_ascii=False))
        return
    from common.io import atomic_open
    from speech.audio import audio_duration

    n, min_s, max_s = int(args.get("n", 300)), float(args.get("min_s", 1)), float(args.get("max_s", 30))
    model = Path(args["model"]) if "model" in args else build_random_base(BENCH / "wav2vec2_base_random")
    files = make_files(n, min_s, max_s, BENCH / f"audio_{n}_{min_s:g}-{max_s:g}s")
    audio_s = sum(audio_duration(f) for f in files)
    (BENCH / "files.json").write_text(json.dumps([str(f) for f in files]))
    if "profile" in args:  # where the suite's time goes, op by op, instead of the comparison
        profile_suite(str(model), args["profile"], [str(f) for f in files], args)
        return
    sides = ["transformers", *(f"suite_{m}" for m in args.get("modes", "fp32,bf16,int8").split(","))]
    results = {}
    for side in sides:
        res_path = BENCH / f"result_{side}.json"
        cmd = [sys.executable, __file__, f"side={side}", f"model={model}", f"files={BENCH / 'files.json'}",
               f"result={res_path}",
               *(f"{k}={args[k]}" for k in ("threads", "hf_batch_size", "max_batch_seconds", "device"))]
        subprocess.run(cmd, check=True, cwd=ROOT)
        results[side] = json.loads(res_path.read_text())
    ref = results["transformers"]
    load = os.getloadavg()
    summary: dict[str, Any] = {"model": str(model), "files": n, "min_s": min_s, "max_s": max_s, "audio_s": audio_s,
                               "threads": int(args["threads"]), "device": args["device"],
                               "max_batch_seconds": float(args["max_batch_seconds"]),
                               "load_avg_1_5_15": load, "sides": {}}
    print(f"{n} files ({min_s:g}-{max_s:g} s), {audio_s / 60:.1f} min of audio, model {model}, "
          f"{args['threads']} threads, device {args['device']}, load average {load[0]:.1f}")
    print(f"{'side':<14} {'load s':>6} {'warm s':>6} {'wall s':>7} {'RTF':>7} {'audio-s/s':>9} {'speed-up':>8} "
          f"{'peak RSS MB':>11} {'RSS/hf':>6} {'identical':>9} {'normalised':>10} {'CER vs hf':>9}")
    for side, r in results.items():
        row = {k: r[k] for k in ("load_s", "warmup_s", "wall_s", "peak_rss_mb", "rss_ready_mb", "batch", "peak_gpu_mb")}
        row |= {"rtf": r["wall_s"] / audio_s, "audio_s_per_s": audio_s / r["wall_s"],
                "speedup": ref["wall_s"] / r["wall_s"], "rss_ratio": r["peak_rss_mb"] / ref["peak_rss_mb"],
                "identical": sum(a == b for a, b in zip(r["texts"], ref["texts"])),
                "identical_normalised": sum(_normalise(a) == _normalise(b) for a, b in zip(r["texts"], ref["texts"])),
                "cer_vs_transformers": _cer([_normalise(t) for t in r["texts"]], [_normalise(t) for t in ref["texts"]])}
        summary["sides"][side] = row
        print(f"{side:<14} {r['load_s']:>6.1f} {r['warmup_s']:>6.1f} {r['wall_s']:>7.1f} {row['rtf']:>7.3f} "
              f"{row['audio_s_per_s']:>9.2f} {row['speedup']:>7.2f}x {r['peak_rss_mb']:>11.0f} "
              f"{row['rss_ratio']:>6.2f} {row['identical']:>5}/{n:<3} {row['identical_normalised']:>6}/{n:<3} "
              f"{100 * row['cer_vs_transformers']:>8.2f}%"
              + (f"  peak GPU {r['peak_gpu_mb']:.0f} MB ({r['peak_gpu_mb'] / ref['peak_gpu_mb']:.2f}x hf)"
                 if r["peak_gpu_mb"] is not None else ""))
    if args["device"] == "cpu":
        summary["fp32_ceiling"] = ceiling = fp32_ceiling(str(model), int(args["threads"]))
        print_ceiling(ceiling, audio_s / ref["wall_s"])
    summary["examples"] = [{side: r["texts"][i] for side, r in results.items()} for i in range(min(2, n))]
    out = Path(args.get("out", BENCH / "hf_pipeline_throughput.json"))
    with atomic_open(out, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:])

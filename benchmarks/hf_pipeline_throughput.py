"""Batch transcription throughput: the suite vs the transformers ASR pipeline and onnxruntime, same weights.

    python benchmarks/hf_pipeline_throughput.py [model=<Wav2Vec2ForCTC dir | suite CTC model dir>]
        [input=<manifest.jsonl | folder>] [n=300] [min_s=1] [max_s=30] [modes=fp32,bf16,int8,onnx]
        [max_batch_seconds=120] [hf_batch_size=1] [threads=2] [device=cpu|cuda]
        [rounds=4] [out=runs/bench/hf_pipeline_throughput.json] [profile=fp32|bf16|int8]

A Hydra app (configs/benchmarks/hf_pipeline_throughput.yaml); ``modes=fp32,bf16`` is read as a list.
``profile=<mode>`` profiles the suite alone in that mode on the same files (cProfile, the twelve costliest calls
by own time) and prints the FLOP-based fp32 ceiling, instead of comparing.

Model: without ``model=`` a wav2vec2-base-sized random Wav2Vec2ForCTC is built once into runs/bench/ (random
weights: near-ties everywhere, so the reduced modes' agreement on it says little). A trained suite model directory
(``model=runs/.../model``) is loaded as it is by the suite; a wav2vec2 one is also exported to transformers format
(``speech.asr.interop.hf.export_hf``) for the pipeline, while a conformer has no transformers peer, so the suite's
fp32 is the reference its other modes and ONNX are compared with.

Input: with ``input=`` the first ``n`` files of a manifest (whose text gives each side's CER against the
references, normalised as scripts/score.py does) or folder; else N files of mixed ``min_s``-``max_s`` s, made of
data/speech/**/*.wav clips concatenated, or synthetic audio when there are none.

Sides, each in its own process with ``threads`` threads, so its peak RSS (VmHWM in the child) is its own,
and each loaded and warmed up on one second of audio before the clock starts. The sides then take turns: the
files are split into ``rounds`` chunks (every ``rounds``-th file), and each round runs every side on one chunk,
in an order rotated each round, so that a CPU whose speed drifts over minutes (this VM's does, up to 2x)
slows every side alike. A side's wall time is the sum of its rounds; the per-round speed-ups show the spread.
All sides are alive at once (wav2vec2-base with every mode: ~13 GB of RSS in all; fewer ``modes`` hold less):

- transformers: ``pipeline("automatic-speech-recognition")`` on the same paths, default batch size 1, since
  wav2vec2-base (group norm) has no padding mask in transformers. The pipeline decodes each file with ffmpeg;
  where there is no ffmpeg (the GPU machine), it is given the soundfile-decoded arrays, read inside the clock.
- ceiling_fp32 (the measured fp32 ceiling): the suite's fp32 model forward alone, timed over the batches the suite
  forms (sorted by length, capped at ``max_batch_seconds`` of padded audio), read and padded before the clock: no
  I/O, no decoding, no output. ``suite_fp32``'s "of ceiling" is its end-to-end throughput over this one.
- suite_<mode> (fp32 is exact; bf16 autocast and int8 dynamically quantised linear layers are the optional modes
  of ``speech.asr.precision.with_precision``, never defaults): transcribed end to end by the suite's batch path
  (``transcribe_to_file``, as scripts/transcribe.py runs it: reading, resampling, batching, greedy decoding,
  writing the JSONL).
- onnx: the model exported by scripts/export_onnx.py (once, into runs/bench/onnx/, checked against PyTorch there)
  and run by onnxruntime (``speech.asr.export.OnnxCTCModel``, ``threads`` intra-op threads) inside the same
  batch path, so batching and decoding are the suite's.

Transcripts are compared with the reference side's (transformers, else suite fp32) exactly and after removing
special-token strings and repeated spaces (the suite drops <unk>/<s>/</s>; transformers prints them). Known
difference: the suite collapses runs of spaces, while transformers can print two word delimiters in a row (1 of
300 files in the 2026-12-02 run), so that transcript matches only after normalising.

The FLOP-based fp32 ceiling (``fp32_ceiling``, CPU only): the model's matmul and convolution FLOPs per audio second
over the fastest fp32 matmul rate measured on this CPU (torch's BLAS or oneDNN), an upper bound for any fp32
implementation. ``device=cuda`` runs the sides on the GPU (int8 and onnx are CPU-only and are left out there) and
reports each side's peak GPU memory (``torch.cuda.max_memory_allocated``) beside its RSS.

Targets (issue 18): suite fp32 >= 90% of the measured ceiling with transcripts identical to the pipeline's;
bf16/int8 >= 3x the pipeline with CER (against references, on a trained model) at most 0.2 points above fp32's.
"""

from __future__ import annotations

import hashlib
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

import hydra
import numpy as np
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "runs" / "bench"
TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
SUITE_MODES = ("fp32", "bf16", "int8")


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


def _vocab(model: str) -> Any:
    """The vocabulary of a model directory without its weights (so the onnx side's RSS holds no torch copy)."""
    from speech.asr.export import load_ctc
    from speech.asr.hub import load_vocab
    from speech.asr.infer import model_type
    from speech.asr.interop.hf import vocab_from_hf

    d, kind = Path(model), model_type(model)
    if kind == "wav2vec2":
        return vocab_from_hf(d, int(json.loads((d / "config.json").read_text(encoding="utf-8"))["vocab_size"]))
    if kind is not None:
        return load_vocab(d / "vocab.json")
    return load_ctc(model)[1]


def _transcriber(job: dict[str, Any], mode: str) -> Any:
    """The suite's greedy ``Transcriber`` in ``mode`` (fp32, bf16, int8, or onnx: onnxruntime on the export)."""
    from speech.asr.export import OnnxCTCModel, load_ctc
    from speech.asr.infer import Transcriber

    if mode == "onnx":
        onnx = OnnxCTCModel(job["onnx"], int(job["threads"]))  # called like a CTCModel
        return Transcriber(onnx, _vocab(job["model"]), decoder="greedy")  # type: ignore[arg-type]
    model_, vocab = load_ctc(job["model"])
    return Transcriber(model_, vocab, job["device"], decoder="greedy", precision=mode)


def _suite(job: dict[str, Any], mode: str) -> tuple[Any, Any]:
    """Load the suite's transcriber in ``mode``; return it and a function that transcribes paths in order."""
    import tempfile

    from speech.asr.batch import Item, transcribe_to_file

    transcriber = _transcriber(job, mode)

    def run(paths: list[str]) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.jsonl"
            transcribe_to_file(transcriber, [Item(p, p) for p in paths], out,
                               max_batch_seconds=float(job["max_batch_seconds"]), num_workers=0, progress=False,
                               lang_alphabet=False)
            rows = {r["audio"]: r["text"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
        return [rows[p] for p in paths]

    return transcriber, run


def _ceiling(job: dict[str, Any], chunks: list[list[str]]) -> Any:
    """The fp32 model forward alone over the suite's batches of each chunk of files, read and padded now (outside
    the clock): a function that runs a chunk's batches and returns no transcripts (other paths: warm-up)."""
    import torch

    from datamodules.bucketing import DurationBatchSampler
    from speech.asr.longform import probe_duration
    from speech.audio import SAMPLE_RATE, decode_audio
    from speech.features import pad_waves

    transcriber = _transcriber(job, "fp32")
    model, device = transcriber.model, transcriber.device

    def batches(files: list[str]) -> list[Any]:
        durations = [probe_duration(f) or 0.0 for f in files]  # as transcribe_to_file batches them
        sampler = DurationBatchSampler(durations, float(job["max_batch_seconds"]), num_buckets=1, shuffle=False)
        waves = [decode_audio(f, SAMPLE_RATE) for f in files]
        return [pad_waves([waves[i] for i in b]) for b in sampler]

    ready = {tuple(chunk): batches(chunk) for chunk in chunks}

    @torch.inference_mode()
    def run(paths: list[str]) -> list[str]:
        todo = ready.get(tuple(paths)) or [pad_waves([decode_audio(p, SAMPLE_RATE) for p in paths])]
        for wave, lens in todo:
            model(wave.to(device), lens.to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return []

    return run


def peak_rss_mb() -> float:
    """This process's peak resident memory: Linux's VmHWM, which starts afresh at exec (getrusage's maxrss keeps
    the parent's from before the fork, so every side would report at least the parent's)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def serve_side(side: str, job: dict[str, Any], conn: Any) -> None:
    """One side in its own process: load and warm up, then transcribe each chunk of files ``conn`` sends (None
    ends), answering (seconds, transcripts); last, its threads and peak memory."""
    import torch

    from speech.audio import write_audio

    torch.set_num_threads(int(job["threads"]))
    t0 = time.perf_counter()
    batch = 0
    if side == "transformers":
        import soundfile as sf
        from transformers import pipeline

        pipe = pipeline("automatic-speech-recognition", model=job["hf_model"],
                        device=0 if job["device"] == "cuda" else -1)
        batch = int(job["hf_batch_size"])

        def run(paths: list[str]) -> list[str]:
            if shutil.which("ffmpeg"):  # the pipeline's own path: it decodes each file with ffmpeg
                return [o["text"] for o in pipe(paths, batch_size=batch)]
            arrays = ({"raw": sf.read(p, dtype="float32")[0], "sampling_rate": 16_000} for p in paths)
            return [o["text"] for o in pipe(arrays, batch_size=batch)]
    elif side == "ceiling_fp32":
        run = _ceiling(job, job["chunks"])
    else:
        _, run = _suite(job, side.removeprefix("suite_"))
    warm = BENCH / f"warmup_1s_{side}.wav"
    write_audio(warm, np.random.default_rng(1).standard_normal(16_000).astype(np.float32) * 0.1)
    t1 = time.perf_counter()
    run([str(warm)])
    t2 = time.perf_counter()
    conn.send({"load_s": t1 - t0, "warmup_s": t2 - t1, "batch": batch, "rss_ready_mb": peak_rss_mb()})
    while (chunk := conn.recv()) is not None:
        start = time.perf_counter()
        texts = run(chunk)
        conn.send((time.perf_counter() - start, texts))
    conn.send({"threads": torch.get_num_threads(),
               "peak_rss_mb": peak_rss_mb(),
               "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if job["device"] == "cuda" else None})


def run_sides(sides: list[str], job: dict[str, Any], rounds: int) -> dict[str, dict[str, Any]]:
    """Every side in its own process, all loaded first; then ``rounds`` rounds, each giving every side the same
    chunk of the files (every ``rounds``-th file), the sides in an order rotated each round. A CPU whose speed
    drifts over minutes (a VM) then slows every side alike, instead of whichever ran last."""
    import multiprocessing

    files: list[str] = job["files"]
    chunks = [files[r::rounds] for r in range(rounds) if files[r::rounds]]
    ctx = multiprocessing.get_context("spawn")
    procs: dict[str, Any] = {}
    conns: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    try:
        for side in sides:  # loaded one at a time, so that each load has the CPU
            conns[side], child = ctx.Pipe()
            procs[side] = ctx.Process(target=serve_side, args=(side, {**job, "chunks": chunks}, child))
            procs[side].start()
            results[side] = {"side": side, **conns[side].recv(), "round_s": [], "texts_by_file": {}}
        for r, chunk in enumerate(chunks):
            for side in sides[r % len(sides):] + sides[: r % len(sides)]:
                conns[side].send(chunk)
                seconds, texts = conns[side].recv()
                results[side]["round_s"].append(seconds)
                results[side]["texts_by_file"].update(zip(chunk, texts))
        for side in sides:
            conns[side].send(None)
            results[side] |= conns[side].recv()
            procs[side].join()
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.kill()
    for result in results.values():
        by_file = result.pop("texts_by_file")
        result["wall_s"] = sum(result["round_s"])
        result["texts"] = [by_file[f] for f in files] if by_file else []
    return results


def profile_suite(job: dict[str, Any], mode: str) -> None:
    """cProfile of the suite transcribing the files in ``mode`` (after a warm-up): the costliest calls by own time,
    then the suite's own functions by cumulative time (what lies outside the model's forward shows there)."""
    import cProfile
    import pstats

    import torch

    torch.set_num_threads(int(job["threads"]))
    _, run = _suite(job, mode)
    run(job["files"][:1])
    prof = cProfile.Profile()
    prof.runcall(run, job["files"])
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(str(ROOT), 25)
    print_ceiling(fp32_ceiling(job["model"], int(job["threads"])))


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

    from speech.asr.export import load_ctc

    torch.set_num_threads(threads)
    model_, _ = load_ctc(model)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model_.eval()(torch.randn(1, 160_000), torch.tensor([160_000]))
    gflop = counter.get_total_flops() / 10 / 1e9
    rates = gemm_rates()
    best = max(r for name, r in rates.items() if name.startswith("fp32"))
    return {"gflop_per_audio_s": gflop, **{f"gflops {k}": v for k, v in rates.items()},
            "fp32_ceiling_audio_s_per_s": best / gflop}


def print_ceiling(ceiling: dict[str, float], reference: float | None = None, side: str = "transformers") -> None:
    """Print ``fp32_ceiling``, and what it is as a multiple of ``reference`` audio-s/s (that of ``side``)."""
    for name, rate in ceiling.items():
        if name.startswith("gflops "):
            print(f"bare 3000x768 @ 768x3072 matmul, {name.removeprefix('gflops ')}: {rate:.0f} GFLOP/s")
    top = ceiling["fp32_ceiling_audio_s_per_s"]
    print(f"FLOP-based fp32 ceiling: {ceiling['gflop_per_audio_s']:.1f} GFLOP per audio second (matmuls and "
          f"convolutions) at the best fp32 matmul rate allows at most {top:.2f} audio-s/s"
          + (f", {top / reference:.2f}x the {side} side" if reference else ""))


def _cer(hyps: list[str], refs: list[str]) -> float:
    """Character error rate of ``hyps`` against ``refs``, summed over the corpus."""
    from common.metrics import error_counts

    counts = [error_counts(h, r)[:2] for h, r in zip(hyps, refs)]
    return sum(e for e, _ in counts) / max(1, sum(n for _, n in counts))


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"<unk>|<s>|</s>|<pad>", "", text).split())


def _ref_cer(texts: list[str], refs: list[str | None], langs: list[str | None]) -> float | None:
    """CER against the input's reference texts, both normalised as scripts/score.py does; None without them."""
    from text.normalize import normalize_transcript

    pairs = [(normalize_transcript(_normalise(t), lang or "und"), normalize_transcript(r, lang or "und"))
             for t, r, lang in zip(texts, refs, langs) if r is not None]
    return _cer(*map(list, zip(*pairs))) if pairs else None


def _model_key(model: Path) -> str:
    """A file-name-safe key of a model directory: its name and a hash of its resolved path."""
    return f"{model.name}-{hashlib.sha1(str(model.resolve()).encode()).hexdigest()[:8]}"


def resolve_models(model: Path, want_onnx: bool, threads: int) -> tuple[str | None, str | None]:
    """The transformers directory for the pipeline (None for a conformer) and, with ``want_onnx``, the ONNX file
    exported from ``model`` (made once into runs/bench/, again when the weights are newer)."""
    from speech.asr.export import load_ctc
    from speech.asr.infer import model_type
    from speech.asr.interop.hf import export_hf
    from speech.asr.model import CTCModel
    from speech.encoders.wav2vec2 import Wav2Vec2Encoder

    weights = model / "model.safetensors" if model.is_dir() else model
    if not weights.exists():
        raise SystemExit(f"model={model}: neither a model directory with model.safetensors nor a .ckpt")
    hf: str | None = str(model)
    if model_type(model) != "wav2vec2":  # a suite model: the pipeline gets the same weights in its own format
        suite_model, vocab = load_ctc(model)
        hf = None
        if isinstance(suite_model, CTCModel) and isinstance(suite_model.encoder, Wav2Vec2Encoder):
            out = BENCH / "hf_export" / _model_key(model)
            if not (out / "model.safetensors").is_file() or out.stat().st_mtime < weights.stat().st_mtime:
                export_hf(suite_model, vocab, out)
            hf = str(out)
    onnx: str | None = None
    if want_onnx:
        path = BENCH / "onnx" / f"{_model_key(model)}.onnx"
        if not path.is_file() or path.stat().st_mtime < weights.stat().st_mtime:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "export_onnx.py"), f"model={model}",
                            f"output={path}", f"threads={threads}"], check=True, cwd=ROOT)
        onnx = str(path)
    return hf, onnx


def _modes(value: Any) -> list[str]:
    """``modes`` as a list, from a list or a comma-separated string; unknown modes are refused."""
    modes = [m.strip() for m in (value.split(",") if isinstance(value, str) else list(value)) if m.strip()]
    bad = [m for m in modes if m not in (*SUITE_MODES, "onnx")]
    if bad:
        raise SystemExit(f"modes: unknown {bad}; choose from {', '.join((*SUITE_MODES, 'onnx'))}")
    return modes


def collect_files(cfg: DictConfig) -> tuple[list[str], list[str | None], list[str | None]]:
    """Paths, reference texts and languages of the benchmark's inputs: ``input`` (first ``n``) or generated."""
    n, min_s, max_s = int(cfg.n), float(cfg.min_s), float(cfg.max_s)
    if cfg.input is None:
        files = make_files(n, min_s, max_s, BENCH / f"audio_{n}_{min_s:g}-{max_s:g}s")
        return [str(f) for f in files], [None] * n, [None] * n
    from speech.asr.batch import collect_inputs

    items = collect_inputs(cfg.input)[:n]
    if not items:
        raise SystemExit(f"input={cfg.input}: no audio files found")
    return [it.path for it in items], [it.extra.get("text") for it in items], [it.lang for it in items]


def compare(results: dict[str, dict[str, Any]], ref_side: str, audio_s: float, refs: list[str | None],
            langs: list[str | None]) -> dict[str, dict[str, Any]]:
    """Per side: times, speed-up and RSS against ``ref_side``, agreement with its transcripts, CERs."""
    ref = results[ref_side]
    ceiling = results.get("ceiling_fp32")
    rows = {}
    for side, r in results.items():
        row = {k: r[k] for k in ("load_s", "warmup_s", "wall_s", "peak_rss_mb", "rss_ready_mb", "batch", "peak_gpu_mb")}
        row |= {"rtf": r["wall_s"] / audio_s, "audio_s_per_s": audio_s / r["wall_s"],
                "speedup": ref["wall_s"] / r["wall_s"], "rss_ratio": r["peak_rss_mb"] / ref["peak_rss_mb"],
                "round_s": r["round_s"], "round_speedups": [a / b for a, b in zip(ref["round_s"], r["round_s"])]}
        if ceiling is not None:
            row["of_ceiling"] = ceiling["wall_s"] / r["wall_s"]
        if r["texts"]:
            row |= {"identical": sum(a == b for a, b in zip(r["texts"], ref["texts"])),
                    "identical_normalised": sum(_normalise(a) == _normalise(b)
                                                for a, b in zip(r["texts"], ref["texts"])),
                    f"cer_vs_{ref_side}": _cer([_normalise(t) for t in r["texts"]],
                                               [_normalise(t) for t in ref["texts"]]),
                    "cer_vs_references": _ref_cer(r["texts"], refs, langs)}
        rows[side] = row
    return rows


def print_table(rows: dict[str, dict[str, Any]], ref_side: str, n: int) -> None:
    """The comparison table, one line a side."""
    print(f"{'side':<14} {'load s':>6} {'warm s':>6} {'wall s':>7} {'RTF':>7} {'audio-s/s':>9} {'speed-up':>8} "
          f"{'of ceil':>7} {'peak RSS MB':>11} {'RSS/ref':>7} {'identical':>9} {'normalised':>10} "
          f"{'CER vs ref':>10} {'CER refs':>8}")
    for side, row in rows.items():
        texts = "identical" in row
        cer_ref = row.get("cer_vs_references")
        print(f"{side:<14} {row['load_s']:>6.1f} {row['warmup_s']:>6.1f} {row['wall_s']:>7.1f} {row['rtf']:>7.3f} "
              f"{row['audio_s_per_s']:>9.2f} {row['speedup']:>7.2f}x "
              + (f"{100 * row['of_ceiling']:>6.1f}% " if "of_ceiling" in row else f"{'—':>7} ")
              + f"{row['peak_rss_mb']:>11.0f} {row['rss_ratio']:>7.2f} "
              + (f"{row['identical']:>5}/{n:<3} {row['identical_normalised']:>6}/{n:<3} "
                 f"{100 * row[f'cer_vs_{ref_side}']:>9.2f}% " if texts else f"{'—':>9} {'—':>10} {'—':>10} ")
              + (f"{100 * cer_ref:>7.2f}%" if cer_ref is not None else f"{'—':>8}")
              + (f"  peak GPU {row['peak_gpu_mb']:.0f} MB" if row["peak_gpu_mb"] is not None else ""))
    print(f"(reference side: {ref_side}; 'of ceil' is audio-s/s over the measured fp32 ceiling's)")


def print_targets(rows: dict[str, dict[str, Any]], ref_side: str, n: int) -> None:
    """Each issue-18 target beside what this run measured."""
    fp32 = rows.get("suite_fp32")
    if fp32 is not None and "of_ceiling" in fp32:
        same = f"{fp32['identical']}/{n} identical ({fp32['identical_normalised']}/{n} normalised) to {ref_side}"
        print(f"target fp32 >= 90% of the measured ceiling: {100 * fp32['of_ceiling']:.1f}%, {same}")
    base = fp32.get("cer_vs_references") if fp32 else None
    for side in ("suite_bf16", "suite_int8", "onnx"):
        row = rows.get(side)
        if row is None:
            continue
        change = (f"CER against references {100 * row['cer_vs_references']:.2f}% vs fp32 {100 * base:.2f}% "
                  f"({100 * (row['cer_vs_references'] - base):+.2f} points; target <= 0.2)"
                  if base is not None and row.get("cer_vs_references") is not None
                  else f"CER vs {ref_side} {100 * row[f'cer_vs_{ref_side}']:.2f}% (no references)")
        rounds = sorted(row["round_speedups"])
        spread = f" (rounds {rounds[0]:.2f}-{rounds[-1]:.2f}x)" if len(rounds) > 1 else ""
        print(f"target {side} >= 3x the pipeline: {row['speedup']:.2f}x {ref_side}{spread}; {change}")


def main(cfg: DictConfig) -> None:
    from common.io import atomic_open
    from speech.audio import audio_duration

    modes, threads, device = _modes(cfg.modes), int(cfg.threads), str(cfg.device)
    if device != "cpu" and "onnx" in modes:
        print("onnx runs on the CPU (onnxruntime's CPU provider): left out with device=" + device)
        modes.remove("onnx")
    model = Path(cfg.model) if cfg.model is not None else build_random_base(BENCH / "wav2vec2_base_random")
    files, refs, langs = collect_files(cfg)
    n = len(files)
    audio_s = sum(audio_duration(f) for f in files)
    hf, onnx = resolve_models(model, "onnx" in modes, threads)
    job: dict[str, Any] = {"model": str(model), "hf_model": hf, "onnx": onnx, "files": files, "threads": threads,
                           "hf_batch_size": int(cfg.hf_batch_size), "device": device,
                           "max_batch_seconds": float(cfg.max_batch_seconds)}
    if cfg.profile is not None:  # where the suite's time goes, op by op, instead of the comparison
        profile_suite(job, str(cfg.profile))
        return
    sides = [*(["transformers"] if hf else []), *(["ceiling_fp32"] if "fp32" in modes else []),
             *(f"suite_{m}" for m in modes if m in SUITE_MODES), *(["onnx"] if onnx else [])]
    results = run_sides(sides, job, max(1, int(cfg.rounds)))
    with_texts = [s for s in sides if s != "ceiling_fp32"]
    if not with_texts:
        raise SystemExit("modes: nothing transcribes (give fp32, bf16, int8 or onnx)")
    ref_side = "transformers" if hf else "suite_fp32" if "suite_fp32" in results else with_texts[0]
    load = os.getloadavg()
    rows = compare(results, ref_side, audio_s, refs, langs)
    summary: dict[str, Any] = {"model": str(model), "hf_model": hf, "onnx": onnx, "input": cfg.input, "files": n,
                               "min_s": float(cfg.min_s), "max_s": float(cfg.max_s), "audio_s": audio_s,
                               "threads": threads, "device": device, "max_batch_seconds": float(cfg.max_batch_seconds),
                               "rounds": int(cfg.rounds),
                               "reference_side": ref_side, "load_avg_1_5_15": load, "sides": rows}
    print(f"{n} files, {audio_s / 60:.1f} min of audio, model {model}, {threads} threads, device {device}, "
          f"load average {load[0]:.1f}")
    print_table(rows, ref_side, n)
    print_targets(rows, ref_side, n)
    if device == "cpu":
        summary["fp32_ceiling"] = ceiling = fp32_ceiling(str(model), threads)
        print_ceiling(ceiling, audio_s / results[ref_side]["wall_s"], ref_side)
    summary["examples"] = [{side: r["texts"][i] for side, r in results.items() if r["texts"]} for i in range(min(2, n))]
    out = Path(cfg.out)
    with atomic_open(out, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    print(f"wrote {out}")


def _list_modes(argv: list[str]) -> list[str]:
    """``modes=a,b`` as ``modes=[a,b]``: Hydra reads a bare comma list as a sweep, the old CLI as a list."""
    return [f"modes=[{a[6:]}]" if a.startswith("modes=") and "," in a and "[" not in a else a for a in argv]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.argv[1:] = _list_modes(sys.argv[1:])
    hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="hf_pipeline_throughput")(main)()

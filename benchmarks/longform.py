"""Long-form transcription vs clip by clip: CER and peak memory on one long file built from test clips.

    python benchmarks/longform.py [model=runs/train/asr_lowres_default/model] [lang=deu_Latn] [minutes=10]
        [manifest=data/speech/test.jsonl] [short_minutes=2] [silence=0.4] [decoder=greedy] [chunk_seconds=30]
        [overlap_seconds=4]

Concatenates the manifest's clips of one language (cycling through them until the file is long
enough, with short silences between), transcribes the file long-form with scripts/transcribe.py, and
transcribes the same clips one by one (the batched short-file path). Each run is its own process;
its peak RSS comes from ``os.wait4``. A shorter long-form run shows whether memory grows with length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hydra
import jiwer
import numpy as np
import soundfile as sf
from omegaconf import DictConfig

from common import runner
from datamodules.manifest import read_manifest
from speech.audio import SAMPLE_RATE, load_audio
from text.normalize import normalize_transcript

ROOT = Path(__file__).resolve().parents[1]


def build_long_file(clips: list[dict], seconds: float, silence: float, out: Path) -> list[int]:
    """Write clips (cycled) with silences between until ``seconds``; the clip index of each piece."""
    order: list[int] = []
    gap = np.zeros(int(silence * SAMPLE_RATE), dtype=np.float32)
    written = 0
    with sf.SoundFile(str(out), "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        while written < seconds * SAMPLE_RATE:
            i = len(order) % len(clips)
            wave = load_audio(clips[i]["audio"])
            f.write(np.concatenate([wave, gap]))
            written += len(wave) + len(gap)
            order.append(i)
    return order


def transcribe(args: list[str]) -> tuple[float, float]:
    """Run ``scripts/transcribe.py`` with ``args`` in a child process: (wall seconds, peak RSS MiB)."""
    cmd = [sys.executable, str(ROOT / "scripts" / "transcribe.py"), *args, "progress=false"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def run(a: DictConfig) -> None:
    """Transcribe the long files and the clips, and print the comparison."""

    clips = [r for r in read_manifest(a.manifest) if r["lang"] == a.lang]
    if not clips:
        raise SystemExit(f"{a.manifest}: no clips of {a.lang}")
    common = [f"model={a.model}", f"lang={a.lang}", f"decoder={a.decoder}", f"chunk_seconds={a.chunk_seconds}",
              f"overlap_seconds={a.overlap_seconds}"]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        results = {}
        for name, minutes in (("short", a.short_minutes), ("long", a.minutes)):
            order = build_long_file(clips, minutes * 60, a.silence, tmp / f"{name}.wav")
            wall, rss = transcribe([*common, f"input={tmp / name}.wav", f"output={tmp / name}.jsonl"])
            hyp = normalize_transcript(json.loads((tmp / f"{name}.jsonl").read_text())["text"])
            ref = " ".join(normalize_transcript(clips[i]["text"]) for i in order)
            results[name] = (order, hyp, ref, wall, rss, sf.info(str(tmp / f"{name}.wav")).duration)

        used = sorted(set(results["long"][0]))
        manifest = tmp / "clips.jsonl"
        manifest.write_text("".join(json.dumps({"audio": str(Path(clips[i]["audio"]).resolve()),
                                                "text": clips[i]["text"], "lang": a.lang}) + "\n"
                                    for i in used))
        wall, rss = transcribe([*common, f"input={manifest}", f"output={tmp / 'clips_out.jsonl'}"])
        by_audio = {r["audio"]: normalize_transcript(r["text"])
                    for r in map(json.loads, (tmp / "clips_out.jsonl").read_text().splitlines())}
        order, _, ref, _, _, seconds = results["long"]
        clip_hyp = " ".join(by_audio[str(Path(clips[i]["audio"]).resolve())] for i in order)

    print(f"model {a.model}, {a.lang}, decoder {a.decoder}, windows {a.chunk_seconds:g} s / overlap "
          f"{a.overlap_seconds:g} s; {len(used)} distinct clips of {a.manifest}")
    print(f"{'run':<28} {'audio min':>9} {'CER %':>7} {'wall s':>7} {'x realtime':>10} {'peak RSS MiB':>12}")
    for name in ("short", "long"):
        _, hyp, r, w, m, s = results[name]
        print(f"{'long-form ' + name:<28} {s / 60:>9.2f} {100 * jiwer.cer(r, hyp):>7.2f} {w:>7.1f} "
              f"{s / w:>10.1f} {m:>12.0f}")
    print(f"{'clip by clip (same audio)':<28} {seconds / 60:>9.2f} {100 * jiwer.cer(ref, clip_hyp):>7.2f} "
          f"{wall:>7.1f} {'':>10} {rss:>12.0f}")


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="longform")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "longform", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/longform.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("longform", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()

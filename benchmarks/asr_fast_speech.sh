#!/usr/bin/env bash
# How much of test_ood's fast-speech error is the speaking rate itself: the extreme-prosody rows whose speaker
# speaks at 200+ words a minute, transcribed as they are and slowed by sox (tempo 0.7, pitch kept), with the same model.
#   bash benchmarks/asr_fast_speech.sh <model dir> [tempo]
# Writes runs/eval/fast_speech/ (the two manifests, the slowed audio, transcripts and scores).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bash benchmarks/asr_fast_speech.sh <model dir> [tempo]}
tempo=${2:-0.7}
py=.venv/bin/python
out=runs/eval/fast_speech
mkdir -p "$out/audio"
# Each row's "rate" is its speaker's espeak-ng rate (words a minute).
$py - "$out" "$tempo" <<'PY'
import json, os, subprocess, sys

out, tempo = sys.argv[1], sys.argv[2]
with open(f"{out}/asis.jsonl", "w") as a, open(f"{out}/slowed.jsonl", "w") as b:
    for line in open("data/speech/test_ood.jsonl", encoding="utf-8"):
        row = json.loads(line)
        if "rate" not in row:
            sys.exit("data/speech/test_ood.jsonl has no speaking rates (written before rows had them): rewrite the "
                     "manifests with python scripts/make_corpus.py corpus=speech (it keeps the audio already made)")
        if row["voice_quality"] != "extreme_prosody" or row["rate"] < 200:
            continue
        src = os.path.abspath(os.path.join("data/speech", row["audio"]))
        dst = os.path.abspath(os.path.join(out, "audio", os.path.basename(src)))
        subprocess.run(["sox", src, dst, "tempo", "-s", tempo], check=True)
        a.write(json.dumps(dict(row, audio=src), ensure_ascii=False) + "\n")
        b.write(json.dumps(dict(row, audio=dst), ensure_ascii=False) + "\n")
PY
for kind in asis slowed; do
  rm -f "$out/${kind}_transcripts.jsonl"
  $py scripts/transcribe.py model="$model" input="$out/$kind.jsonl" output="$out/${kind}_transcripts.jsonl" progress=false
  echo "[fast speech] $kind (tempo $([ $kind = asis ] && echo 1.0 || echo "$tempo")): CER/WER % by language"
  $py scripts/score.py hyp="$out/${kind}_transcripts.jsonl"
done

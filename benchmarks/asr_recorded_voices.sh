#!/usr/bin/env bash
# ASR on voices of another synthesiser: test_ood's sentences read by every installed festival diphone voice of the
# model's languages (each one real speaker's recordings, cut and joined: Italian lp_diphone and pc_diphone, Hindi
# hindi_NSK_diphone), as festival speaks them, without effects. The speech corpus trains on none of them with
# corpus.recorded_share=0, and on all but corpus.recorded_heldout (lp_diphone) by default.
#   bash benchmarks/asr_recorded_voices.sh <model dir> [rows per language]
# Writes runs/eval/recorded_voices/ (audio, manifest, transcripts, and the scores by voice and by language).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bash benchmarks/asr_recorded_voices.sh <model dir> [rows per language]}
rows=${2:-50}
py=.venv/bin/python
out=runs/eval/recorded_voices
mkdir -p "$out/audio"
$py - "$out" "$rows" <<'PY'
import json, os, sys

from datamodules.corpus.voices import festival_voices, festival_wave
from speech.audio import write_audio

out, rows = sys.argv[1], int(sys.argv[2])
by_lang: dict[str, list[str]] = {}
for line in open("data/speech/test_ood.jsonl", encoding="utf-8"):
    row = json.loads(line)
    by_lang.setdefault(row["lang"], []).append(row["text"])
with open(f"{out}/manifest.jsonl", "w", encoding="utf-8") as f:
    for lang, texts in sorted(by_lang.items()):
        for voice in festival_voices(lang):
            for i, text in enumerate(texts[:rows]):
                path = os.path.abspath(f"{out}/audio/{voice}_{i:03d}.wav")
                if not os.path.exists(path):
                    write_audio(path, festival_wave(voice, text))
                f.write(json.dumps({"audio": path, "text": text, "lang": lang, "speaker": voice},
                                   ensure_ascii=False) + "\n")
PY
[ -s "$out/manifest.jsonl" ] || { echo "[recorded voices] no festival diphone voice of the corpus languages is installed"; exit 1; }
rm -f "$out/transcripts.jsonl"
$py scripts/transcribe.py model="$model" input="$out/manifest.jsonl" output="$out/transcripts.jsonl" progress=false
echo "[recorded voices] CER/WER % by festival voice"
$py scripts/score.py hyp="$out/transcripts.jsonl" ref="$out/manifest.jsonl" by=speaker out="$out/scores_by_voice.json"

#!/usr/bin/env bash
# CER/WER with the language detected by the model's LID head instead of given by the manifest.
# Usage: bash scripts/score_detected.sh <model dir> [split ...]   (splits of data/speech; default: test test_ood)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bash scripts/score_detected.sh <model dir> [split ...]}
shift
if [ $# -eq 0 ]; then splits=(test test_ood); else splits=("$@"); fi
py=.venv/bin/python
for split in "${splits[@]}"; do
  src="data/speech/$split.jsonl"
  [ -f "$src" ] || { echo "no $src" >&2; continue; }
  nolang="$model/../${split}_nolang.jsonl"
  # The same rows without their language, with absolute audio paths (the copy lives beside the model).
  $py - "$src" "$nolang" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
base = os.path.dirname(os.path.abspath(src))
with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
    for line in f:
        row = json.loads(line)
        row.pop("lang", None)
        row["audio"] = os.path.join(base, row["audio"])
        g.write(json.dumps(row, ensure_ascii=False) + "\n")
PY
  out="$model/../${split}_detected_transcripts.jsonl"
  $py scripts/transcribe.py model="$model" input="$nolang" output="$out" progress=false
  echo "[detected] $split: CER/WER % by reference language"
  $py scripts/score.py hyp="$out" ref="$src"
done

#!/usr/bin/env bash
# The source-tracing family's one command, 60 minutes on 2 cores: set up (the trace extra: pyworld and Debian's
# festival voices), build the deepfake corpus (data/deepfake) if it is missing, train experiment=source_trace
# (LFCC + ResNet-18) on the main training split and on the mono-lingual one, and print the protocol table
# (benchmarks/source_trace_protocols.py: main, unseen_speaker, unseen_channel, lolo, unseen_generator, mono,
# cross_lingual) and the inference speed (benchmarks/source_trace_speed.py). docs/source_trace.md.
#   bash scripts/source_trace_quickstart.sh [train.py overrides for both runs ...]
# Budgets (minutes, environment): MAIN_JOB_MINUTES=60 for the whole job; TRACE_MONO_MINUTES=8 for the mono-lingual
# model; the main model gets what is left less the mono run and 5 minutes for the table (scripts/time_budget.sh).
# Re-running resumes: the corpus is kept (delete data/deepfake/corpus.json to rebuild it), a finished model is
# kept, an unfinished training continues from its last checkpoint, and the table reads the reports it already has.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh dev,trace
py=.venv/bin/python
export MAIN_JOB_MINUTES=${MAIN_JOB_MINUTES:-60}
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
mono_minutes=${TRACE_MONO_MINUTES:-8}

if [ -f data/deepfake/corpus.json ]; then
  echo "[trace] data/deepfake exists; keeping it"
else
  echo "[trace] building the deepfake corpus (data/deepfake)"
  $py scripts/make_corpus.py corpus=deepfake
fi
t1=$(date +%s)

train() {  # train PROTOCOL RUN_NAME MAX_TIME [overrides...]: a run whose model/ exists is kept
  local protocol=$1 name=$2 max_time=$3 run=runs/train/$2
  shift 3
  if [ -f "$run/model/config.json" ]; then
    echo "[trace] $run/model exists; keeping it"
    return
  fi
  local resume=()
  [ -f "$run/checkpoints/last.ckpt" ] && resume=(ckpt_path=last) && echo "[trace] resuming $run"
  echo "[trace] training experiment=source_trace data.protocol=$protocol for at most $max_time (DD:HH:MM:SS)"
  # test=false: the protocol table below tests every protocol of this training split.
  $py scripts/train.py experiment=source_trace data.protocol="$protocol" run_name="$name" test=false \
    trainer.max_time="$max_time" trainer.enable_progress_bar=false callbacks.progress_bar=null "${resume[@]}" "$@"
}

main_time=$(time_budget runs/train/source_trace_default "$t0" $(((mono_minutes + 5) * 60)))
train main source_trace_default "$main_time" "$@"
t2=$(date +%s)
train mono source_trace_mono "$(printf '00:00:%02d:00' "$mono_minutes")" "$@"
t3=$(date +%s)

echo "[trace] the protocol table (benchmarks/source_trace_protocols.py)"
$py benchmarks/source_trace_protocols.py
$py benchmarks/source_trace_speed.py
t4=$(date +%s)
echo "[trace] models: runs/train/source_trace_default/model (main), runs/train/source_trace_mono/model (mono)"
echo "[trace] try: python scripts/trace_source.py model=runs/train/source_trace_default/model input=<folder> output=out.jsonl"
echo "[trace] wall time: setup+corpus $((t1 - t0)) s, main model $((t2 - t1)) s, mono model $((t3 - t2)) s," \
     "table and speed $((t4 - t3)) s, total $(((t4 - t0) / 60)) min"

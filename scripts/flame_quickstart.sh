#!/usr/bin/env bash
# The FLAME family's one command, 60 minutes on 2 cores: set up, build the scene corpus (data/vision) if missing,
# reuse (or train) the suite's small frozen LLM (experiment=text_lm on data/text + data/text_real), cache its facet
# embeddings of every caption (scripts/flame_cache.py: short captions of every split, long captions of the test
# split), train FLAME (experiment=flame) and the CLIP baseline (experiment=clip_baseline) on the same images, evaluate
# both on the held-out scenes and print the retrieval table side by side.
#   bash scripts/flame_quickstart.sh [train.py overrides for both trainings ...]
# LLM: FLAME_LLM=<local causal LM dir> uses that one; else runs/train/text_lm_default/model when it exists; else
# experiment=text_lm trains for FLAME_LLM_MINUTES (8).
# Budgets (minutes, environment): MAIN_JOB_MINUTES=60 for the whole job; FLAME_MINUTES=12 and FLAME_BASELINE_MINUTES=8
# at most, each shortened when the clock says so (scripts/time_budget.sh); evaluation takes ~3.
# FLAME_TRANSFER=1 also trains FLAME on English captions only (the cross-lingual transfer run, FLAME_MINUTES more).
# FLAME_SMOKE=1 runs every step at toy size (a 48-image corpus, a 1-layer LLM, a few steps) under runs/flame_smoke, to
# check the pipeline end to end in minutes; its figures mean nothing.
# Re-running resumes: the corpus, LLM and cache are kept (the cache finishes missing shards), trainings with an
# exported model are skipped (delete <run>/model to retrain) and interrupted ones continue from their last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh dev,vision
py=.venv/bin/python
export MAIN_JOB_MINUTES=${MAIN_JOB_MINUTES:-60}
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

vision=data/vision; cache=data/vision/flame_cache; tag=default; out=runs/flame
corpus_args=(); lm_args=(); train_args=(); cache_args=(batch_size=64 progress=false)
llm_minutes=${FLAME_LLM_MINUTES:-8}; flame_minutes=${FLAME_MINUTES:-12}; clip_minutes=${FLAME_BASELINE_MINUTES:-8}
if [ "${FLAME_SMOKE:-0}" = 1 ]; then
  vision=runs/flame_smoke/vision; cache=runs/flame_smoke/flame_cache; tag=smoke; out=runs/flame_smoke
  corpus_args=(corpus.out_dir="$vision" corpus.train=48 corpus.dev=12 corpus.test=12 corpus.test_seen=12
               corpus.image_size=32 corpus.shard_size=16)
  lm_args=(+model.net.d_model=32 +model.net.num_layers=1 +model.net.num_heads=2 +model.net.ffn_dim=64
           data.vocab_size=1000 trainer.max_steps=3 trainer.val_check_interval=3 trainer.limit_val_batches=1)
  train_args=(data.image_size=32 data.batch_size=8 data.shuffle_buffer=16 +model.net.width=32 +model.net.depth=1
              +model.net.heads=2 +model.net.patch_size=8 trainer.max_steps=4 trainer.val_check_interval=2)
  llm_minutes=3; flame_minutes=2; clip_minutes=2
fi
data_args=(data.train_path="$vision/shards/train" data.val_path="$vision/shards/dev"
           "data.test_path={test: $vision/shards/test, test_seen: $vision/shards/test_seen}")
budget() { printf '00:%02d:%02d:00' $(($1 / 60)) $(($1 % 60)); }  # minutes -> DD:HH:MM:SS
left() { echo $(( MAIN_JOB_MINUTES - ($(date +%s) - t0) / 60 - $1 )); }  # minutes left less a reserve
cap() { local m=$1 most=$2 least=$3; (( m > most )) && m=$most; (( m < least )) && m=$least; echo "$m"; }
resume() { [ -f "$1/checkpoints/last.ckpt" ] && echo "ckpt_path=last" || true; }
mkdir -p "$out"

if [ -f "$vision/stats.json" ]; then
  echo "[flame] $vision exists; keeping it"
else
  echo "[flame] building the scene corpus ($vision)"
  $py scripts/make_corpus.py corpus=vision "${corpus_args[@]}"
fi
t1=$(date +%s)

llm=${FLAME_LLM:-runs/train/text_lm_$tag/model}
if [ ! -f "$llm/config.json" ]; then
  [ -n "${FLAME_LLM:-}" ] && { echo "[flame] FLAME_LLM=$llm: no config.json there" >&2; exit 2; }
  for corpus in text text_real; do
    [ -f "data/$corpus/stats.json" ] || { echo "[flame] building data/$corpus"; $py scripts/make_corpus.py corpus=$corpus; }
  done
  echo "[flame] no LLM at $llm: training experiment=text_lm for at most $llm_minutes minutes"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=text_lm run_name="text_lm_$tag" test=false trainer.max_time="$(budget "$llm_minutes")" \
    $(resume "runs/train/text_lm_$tag") "${lm_args[@]}"
fi
t2=$(date +%s)

echo "[flame] caching $llm's facet embeddings in $cache (short captions: every split; long: the test split)"
rc=0
$py scripts/flame_cache.py model="$llm" input="$vision/folder" output="$cache" "kinds=[short]" "${cache_args[@]}" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"  # 3: a few bad captions are listed in failed.jsonl and skipped
$py scripts/flame_cache.py model="$llm" input="$vision/folder/test/captions.jsonl" output="$cache" "kinds=[long]" \
  "${cache_args[@]}" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"
t3=$(date +%s)

# train NAME EXPERIMENT MINUTES [overrides]: train unless exported, then evaluate into runs/eval/NAME
train_eval() {
  local name=$1 experiment=$2 minutes=$3; shift 3
  local run=runs/train/$name
  if [ ! -f "$run/model/config.json" ]; then
    echo "[flame] training experiment=$experiment ($name) for at most $minutes minutes"
    # shellcheck disable=SC2046
    $py scripts/train.py experiment="$experiment" run_name="$name" test=false trainer.max_time="$(budget "$minutes")" \
      "${data_args[@]}" $(resume "$run") "$@"
  fi
  echo "[flame] evaluating $name on the held-out scenes"
  local cached=(); [ "$experiment" = flame ] && cached=(data.text_embeddings="$cache")
  $py scripts/eval.py experiment="$experiment" ckpt_path="$run/model" run_name="$name" "${data_args[@]}" \
    "${cached[@]}" > "$out/$name.eval.log" 2>&1 || { tail -20 "$out/$name.eval.log"; exit 1; }
}
transfer=0; [ "${FLAME_TRANSFER:-0}" = 1 ] && transfer=$flame_minutes
train_eval "flame_$tag" flame "$(cap "$(left $((clip_minutes + transfer + 6)))" "$flame_minutes" 2)" \
  data.text_embeddings="$cache" "${train_args[@]}" "$@"
if [ "$transfer" -gt 0 ]; then
  train_eval "flame_eng_$tag" flame "$(cap "$(left $((clip_minutes + 4)))" "$flame_minutes" 2)" \
    data.text_embeddings="$cache" "data.train_langs=[eng_Latn]" "${train_args[@]}" "$@"
fi
t4=$(date +%s)
# The baseline reads the captions themselves, not the cache.
train_eval "clip_baseline_$tag" clip_baseline "$(cap "$(left 3)" "$clip_minutes" 2)" "${train_args[@]}" "$@"
t5=$(date +%s)

echo "[flame] text->image / image->text recall on held-out scenes (test: unseen colour+shape pairs)"
$py - "$tag" <<'EOF' | tee "$out/table.txt"
import json, sys
from pathlib import Path
from vision.flame.evaluation import format_table

tag = sys.argv[1]
runs = {"FLAME": f"flame_{tag}", "FLAME eng-only": f"flame_eng_{tag}", "CLIP baseline": f"clip_baseline_{tag}"}
results = {name: json.loads(p.read_text())["metrics"] for name, run in runs.items()
           if (p := Path("runs/eval") / run / "retrieval.json").is_file()}
for split in ("test", "test_seen"):
    print(format_table(results, split=split), end="\n\n")
EOF
echo "[flame] models: runs/train/{flame,clip_baseline}_$tag/model   metrics: runs/eval/*_$tag/retrieval.json"
echo "[flame] wall time: setup+corpus $((t1 - t0)) s, LLM $((t2 - t1)) s, cache $((t3 - t2)) s," \
     "FLAME $((t4 - t3)) s, baseline $((t5 - t4)) s, total $(((t5 - t0) / 60)) min $(((t5 - t0) % 60)) s"

#!/usr/bin/env bash
# Does training on real tunes help off-corpus? Continue the symbolic CLaMP 3 model for a few minutes on the generated
# training tunes with Ryan's train_real mixed in (or, as the control, without), then score it on the generated test
# split and on the real test_real / test_heldout (python scripts/make_corpus.py corpus=music_real first).
#   bash benchmarks/clamp_real_finetune.sh <name> <minutes> [train.py overrides...]
# e.g. bash benchmarks/clamp_real_finetune.sh clamp3_ft_real 10 'data.extra_train=[${paths.data_dir}/music_real/train_real.jsonl]' data.extra_train_repeat=3
#      bash benchmarks/clamp_real_finetune.sh clamp3_ft_gen 10          (the control: the same minutes, generated only)
# Writes runs/train/<name>/ and runs/eval/<name>/retrieval.json; run it under the heavy-job lock on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 minutes=$2
shift 2
py=.venv/bin/python
base=${BASE_MODEL:-runs/train/clamp3_symbolic_default/model}
[ -d "$base" ] || { echo "$base: no base model (bash scripts/clamp_quickstart.sh first)" >&2; exit 1; }
[ -f data/music_real/train_real.jsonl ] || { echo "no data/music_real: python scripts/make_corpus.py corpus=music_real" >&2; exit 1; }
resume=()
[ -f "runs/train/$name/checkpoints/last.ckpt" ] && resume=(ckpt_path=last)
t0=$(date +%s)
$py scripts/train.py experiment=clamp3_symbolic run_name="$name" test=false model.init_encoder="$base" \
  model.mlm_only_steps=0 model.lr=3e-4 model.warmup_steps=10 trainer.val_check_interval=20 threads="${THREADS:-2}" \
  trainer.max_time="00:00:$(printf %02d "$minutes"):00" "${resume[@]}" "$@"
t1=$(date +%s)
$py scripts/eval.py experiment=clamp3_symbolic ckpt_path="runs/train/$name/model" run_name="$name" \
  threads="${THREADS:-2}" data.extra_test.test_combo=null
echo "[$name] training $((t1 - t0)) s, evaluation $(($(date +%s) - t1)) s; steps:" \
  "$($py -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=True)['global_step'])" \
  "runs/train/$name/checkpoints/last.ckpt")"

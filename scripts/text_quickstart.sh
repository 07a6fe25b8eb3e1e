#!/usr/bin/env bash
# The text job on a fresh machine, 30 minutes on 2 cores: set up, build the generated text corpus (data/text) and the
# real one (data/text_real_large, human translations from 1,386 Debian packages) and Chinese-English dictionary pairs
# (data/text_dict, CC-CEDICT), train experiment=text_encoder_real,
# and print xsim tables on the generated-grammar test and on the out-of-domain real test (held-out packages).
#   bash scripts/text_quickstart.sh [train.py overrides ...]
# Re-running resumes: built corpora are kept (delete <corpus>/stats.json to rebuild one) and training continues
# from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh
py=.venv/bin/python
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

for corpus in text text_real_large text_dict; do
  if [ -f "data/$corpus/stats.json" ]; then
    echo "[text] data/$corpus exists; keeping it"
  else
    echo "[text] building data/$corpus"
    $py scripts/make_corpus.py corpus=$corpus
  fi
done
t1=$(date +%s)

run=runs/train/text_encoder_real_default
resume=()
[ -f "$run/checkpoints/last.ckpt" ] && resume=(ckpt_path=last) && echo "[text] resuming $run"
# Training gets what is left of the job's 30 minutes after setup and the corpora, less 3 minutes for the tokenizer
# and the two evaluations (scripts/time_budget.sh). A trainer.max_time=... argument overrides it.
max_time=$(time_budget "$run" "$t0" 180)
echo "[text] training experiment=text_encoder_real for at most $max_time (DD:HH:MM:SS)"
# test=false: the evaluation below scores the test split, and the OOD split beside it.
$py scripts/train.py experiment=text_encoder_real run_name=text_encoder_real_default test=false \
  trainer.max_time="$max_time" "${resume[@]}" "$@"
t2=$(date +%s)

echo "[text] xsim on the generated-grammar test and on the out-of-domain real test"
$py scripts/eval.py experiment=text_encoder_real ckpt_path="$run/model" run_name=text_encoder_real_default
t3=$(date +%s)
echo "[text] model: $run/model   tables: runs/eval/text_encoder_real_default/{xsim.json,ood/xsim.json}"
echo "[text] wall time: setup+corpora $((t1 - t0)) s, training $((t2 - t1)) s, evaluation $((t3 - t2)) s," \
     "total $(((t3 - t0) / 60)) min $(((t3 - t0) % 60)) s"

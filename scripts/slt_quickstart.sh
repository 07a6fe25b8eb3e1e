#!/usr/bin/env bash
# The SONAR-SLT job on a fresh machine, 60 minutes on 2 cores: set up, build the generated sign corpus (data/sign),
# train experiment=slt_sonar (pose encoder onto the frozen sentence encoder's embeddings, decoder on text), evaluate
# it on held-out sentences by held-out signers (test) and by training signers (test_seen_signer), and print BLEU,
# chrF and the embedding cosine per target language.
#   bash scripts/slt_quickstart.sh [train.py overrides ...]
# Budgets (minutes, environment): MAIN_JOB_MINUTES=60 for the whole job; SLT_ENCODER_MINUTES=12 to train the shared
# sentence encoder (experiment=text_encoder_real) only when runs/train/text_encoder_real_default/model is missing;
# slt_sonar gets what is left less 8 minutes for the evaluation (scripts/time_budget.sh): SLT_EVAL_CLIPS=200 clips
# of each test split (a fixed sample; 0: all), SLT_EVAL_BEAM=1 (greedy; search has no key-value cache yet).
# SLT_SMOKE=1 runs every step at toy size (a small corpus, a few steps) under runs/slt_smoke, to check the pipeline
# end to end in minutes; its figures mean nothing.
# Re-running resumes: the corpus is kept (delete data/sign/corpus.json to rebuild it) and training continues from
# its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh dev,sign
py=.venv/bin/python
export MAIN_JOB_MINUTES=${MAIN_JOB_MINUTES:-60}
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

data=data/sign; run_name=slt_sonar_default; beam=${SLT_EVAL_BEAM:-1}; clips=${SLT_EVAL_CLIPS:-200}
corpus_args=(); train_args=()
if [ "${SLT_SMOKE:-0}" = 1 ]; then
  data=runs/slt_smoke/sign; run_name=slt_sonar_smoke; beam=1
  corpus_args=(corpus.out_dir="$data" corpus.train_sentences=40 corpus.train_clips=80 corpus.dev_sentences=6
               corpus.test_sentences=6)
  train_args=(trainer.max_steps=4 trainer.val_check_interval=4 model.val_max_clips=8)
fi
data_args=(data.train_manifest="$data/train.jsonl" data.val_manifest="$data/dev.jsonl"
           "data.test_manifest={test: $data/test.jsonl, test_seen_signer: $data/test_seen_signer.jsonl}"
           data.embedding_cache="$data/cache/targets" data.tokenizer_path="$data/cache/slt_tokenizer.model")

if [ -f "$data/corpus.json" ]; then
  echo "[slt] $data exists; keeping it"
else
  echo "[slt] building the sign corpus ($data)"
  $py scripts/make_corpus.py corpus=sign "${corpus_args[@]}"
fi
t1=$(date +%s)

encoder=runs/train/text_encoder_real_default/model
if [ ! -f "$encoder/config.json" ]; then
  echo "[slt] no sentence encoder at $encoder: training experiment=text_encoder_real for ${SLT_ENCODER_MINUTES:-12} min"
  for corpus in text text_real_large; do
    [ -f "data/$corpus/stats.json" ] || $py scripts/make_corpus.py corpus=$corpus
  done
  minutes=${SLT_ENCODER_MINUTES:-12}
  $py scripts/train.py experiment=text_encoder_real run_name=text_encoder_real_default test=false \
    trainer.max_time="$(printf '00:%02d:%02d:00' $((minutes / 60)) $((minutes % 60)))"
fi
t2=$(date +%s)

run=runs/train/$run_name
resume=()
[ -f "$run/checkpoints/last.ckpt" ] && resume=(ckpt_path=last) && echo "[slt] resuming $run"
# Training gets what is left of the job's 60 minutes less 8 for the evaluation. A trainer.max_time=... argument
# overrides it.
max_time=$(time_budget "$run" "$t0" 480)
echo "[slt] training experiment=slt_sonar for at most $max_time (DD:HH:MM:SS)"
$py scripts/train.py experiment=slt_sonar run_name="$run_name" test=false trainer.max_time="$max_time" \
  "${data_args[@]}" "${train_args[@]}" "${resume[@]}" "$@"
t3=$(date +%s)

echo "[slt] BLEU, chrF and embedding cosine per language (beam $beam, $clips clips a split)"
$py scripts/eval.py experiment=slt_sonar ckpt_path="$run/model" run_name="$run_name" model.eval_beam="$beam" \
  model.eval_max_clips="$clips" \
  "${data_args[@]}"
t4=$(date +%s)
echo "[slt] model: $run/model   tables: runs/eval/$run_name/sign_eval.json"
echo "[slt] try: python scripts/translate_sign.py model=$run/model input=$data/test.jsonl tgt_langs=[eng_Latn,deu_Latn] output=out.jsonl"
echo "[slt] wall time: setup+corpus $((t1 - t0)) s, encoder $((t2 - t1)) s, training $((t3 - t2)) s," \
     "evaluation $((t4 - t3)) s, total $(((t4 - t0) / 60)) min $(((t4 - t0) % 60)) s"

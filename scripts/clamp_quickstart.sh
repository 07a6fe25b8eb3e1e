#!/usr/bin/env bash
# The CLaMP 3 family's one command, 60 minutes on 2 cores: set up, build the music corpus (corpus=music: ABC, MIDI,
# audio and descriptions in seven languages) and the real tunes (corpus=music_real: Ryan's Mammoth Collection and three
# more tune books, ABC and MIDI) unless they exist, train the symbolic stage (experiment=clamp3_symbolic, on the
# generated tunes with Ryan's train_real mixed in),
# the audio stage from it (experiment=clamp3_audio: audio-text only, text bridges audio and ABC) and the comparison
# model trained on audio-ABC pairs (model.pair_audio_symbolic=true), evaluate all three on the held-out tunes (the
# symbolic model also on test_real, Ryan's tunes whose titles training never saw;
# the held-out tune books, test_heldout, take ~10 more minutes: see docs/clamp.md), and print the retrieval table.
#   bash scripts/clamp_quickstart.sh [train.py overrides for every stage ...]
# Budgets (minutes, environment): MAIN_JOB_MINUTES=60 for the whole job; CLAMP_AUDIO_MINUTES=8 for each audio-stage
# model; CLAMP_PAIRS=0 skips the comparison model; the symbolic stage gets what is left less the audio stages and 6
# minutes for the evaluations (scripts/time_budget.sh). CLAMP_SMOKE=1 runs every step at toy size (a few dozen
# tunes, a few steps) under runs/clamp_smoke to check the pipeline in minutes; its figures mean nothing.
# Re-running resumes: the corpus and finished models are kept, and trainings continue from their last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh dev,music   # music21, mido, abc2midi, fluidsynth and the TimGM6mb soundfont
py=.venv/bin/python
export MAIN_JOB_MINUTES=${MAIN_JOB_MINUTES:-60}
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

data=data/music; tag=default; audio_minutes=${CLAMP_AUDIO_MINUTES:-8}; pairs=${CLAMP_PAIRS:-1}
corpus_args=(); train_args=()
if [ "${CLAMP_SMOKE:-0}" = 1 ]; then
  data=runs/clamp_smoke/music; tag=smoke; audio_minutes=1
  corpus_args=(corpus.train=40 corpus.dev=8 corpus.test=12 corpus.test_combo=8 corpus.holdout_combos=2)
  train_args=(trainer.max_steps=4 trainer.val_check_interval=2 data.batch_size=8 model.mlm_only_steps=2
              model.vocab_size=500 'data.extra_train=[]')
fi
budget() { printf '00:%02d:%02d:00' $(($1 / 60)) $(($1 % 60)); }  # minutes -> DD:HH:MM:SS
resume() { [ -f "$1/checkpoints/last.ckpt" ] && echo "ckpt_path=last" || true; }
data_args=(data.train_manifest="$data/train.jsonl" data.val_manifest="$data/dev.jsonl"
           data.test_manifest="$data/test.jsonl" "data.extra_test={test_combo: $data/test_combo.jsonl}"
           model.audio_cache="$data/cache/clamp3_audio")

if [ -f "$data/corpus.json" ]; then
  echo "[clamp] $data exists; keeping it"
else
  echo "[clamp] building the music corpus ($data)"
  $py scripts/make_corpus.py corpus=music corpus.out_dir="$data" "${corpus_args[@]}"
fi
real_args=(data.extra_test.test_real=null data.extra_test.test_heldout=null)
if [ "${CLAMP_SMOKE:-0}" != 1 ]; then
  [ -f data/music_real/corpus.json ] || $py scripts/make_corpus.py corpus=music_real   # 30 s, no audio
  real_args=(data.extra_test.test_real=data/music_real/test_real.jsonl data.extra_test.test_heldout=null)
fi
t1=$(date +%s)

sym=runs/train/clamp3_symbolic_$tag
if [ ! -f "$sym/model/config.json" ]; then
  n_audio=$((pairs == 1 ? 2 : 1))
  max_time=$(time_budget "$sym" "$t0" $(((n_audio * audio_minutes + 6) * 60)))
  echo "[clamp] training experiment=clamp3_symbolic for at most $max_time (DD:HH:MM:SS)"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=clamp3_symbolic run_name="clamp3_symbolic_$tag" test=false \
    trainer.max_time="$max_time" "${data_args[@]}" $(resume "$sym") "${train_args[@]}" "$@"
fi
t2=$(date +%s)

runs=(clamp3_symbolic_$tag clamp3_audio_$tag)
[ "$pairs" = 1 ] && runs+=(clamp3_audio_pairs_$tag)
for run in "${runs[@]:1}"; do
  [ -f "runs/train/$run/model/config.json" ] && continue
  paired=false; [[ $run == *pairs* ]] && paired=true
  echo "[clamp] training experiment=clamp3_audio (pair_audio_symbolic=$paired) for at most $audio_minutes minutes"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=clamp3_audio run_name="$run" test=false model.init_encoder="$sym/model" \
    model.pair_audio_symbolic=$paired trainer.max_time="$(budget "$audio_minutes")" "${data_args[@]}" \
    $(resume "runs/train/$run") "${train_args[@]}" "$@"
done
t3=$(date +%s)

for run in "${runs[@]}"; do
  exp=clamp3_audio; [[ $run == clamp3_symbolic* ]] && exp=clamp3_symbolic
  # the real tunes have no audio, and the audio stage leaves the symbolic branch and text as they were
  real=(data.extra_test.test_real=null data.extra_test.test_heldout=null)
  [ $exp = clamp3_symbolic ] && real=("${real_args[@]}")
  echo "[clamp] evaluating $run on the held-out tunes"
  $py scripts/eval.py experiment=$exp ckpt_path="runs/train/$run/model" run_name="$run" "${data_args[@]}" "${real[@]}"
done
t4=$(date +%s)

echo "[clamp] retrieval table (test: held-out tunes; test_combo: held-out genre x key combinations)"
$py - "${runs[@]}" <<'EOF'
import json
import sys

rows = [("text->ABC MRR", "text_abc/mean/mrr"), ("text->ABC, no R:/%%MIDI MRR", "text_abc_bare/mean/mrr"),
        ("text->MIDI MRR", "text_midi/mean/mrr"), ("text->audio MRR", "text_audio/mean/mrr"),
        ("audio->ABC MRR", "audio_abc/mrr"), ("ABC->audio MRR", "abc_audio/mrr"),
        ("audio->ABC chance MRR", "audio_abc/chance_mrr"), ("zero-shot key (all langs)", "zeroshot_abc/key/all/accuracy"),
        ("zero-shot meter (all langs)", "zeroshot_abc/meter/all/accuracy"),
        ("zero-shot genre (all langs)", "zeroshot_abc/genre/all/accuracy"),
        ("text->ABC MRR, duplicate-aware", "text_abc_fits/mean/mrr")]
runs = sys.argv[1:]
got = {r: json.load(open(f"runs/eval/{r}/retrieval.json"))["metrics"] for r in runs}
for split in ("test", "test_combo", "test_real"):
    print(f"{split:<30}" + "".join(f"{r.removeprefix('clamp3_'):>24}" for r in runs))
    for label, key in rows:
        vals = [got[r].get(f"{split}/{key}") for r in runs]
        print(f"  {label:<28}" + "".join(f"{v:24.3f}" if v is not None else f"{'-':>24}" for v in vals))
EOF
echo "[clamp] models: runs/train/{$(IFS=,; echo "${runs[*]}")}/model   tables: runs/eval/<run>/retrieval.json"
echo "[clamp] wall time: setup+corpus $((t1 - t0)) s, symbolic $((t2 - t1)) s, audio $((t3 - t2)) s," \
     "evaluation $((t4 - t3)) s, total $(((t4 - t0) / 60)) min $(((t4 - t0) % 60)) s"

#!/usr/bin/env bash
# The main job on a fresh machine: set up, build the default multilingual corpus, train
# experiment=asr_lowres, transcribe the held-out test split and print per-language CER/WER.
# Re-running resumes: finished audio is kept and training continues from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh
py=.venv/bin/python
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

# Real sentences (Debian packages' translations, fetched with apt-get download) feed a quarter of the training text,
# and held-out packages give test_ood its own text domain; without them the speech corpus falls back to generated
# and hand-written text, and says so. The builder skips a corpus already built with the same config.
echo "[main] building the real text corpus (data/text_real)"
$py scripts/make_corpus.py corpus=text_real || echo "[main] corpus=text_real stopped (see the message above): the" \
  "speech corpus uses data/text_real as it is, or goes on without real text"
echo "[main] building the generated speech corpus (data/speech)"
$py scripts/make_corpus.py corpus=speech
t1=$(date +%s)

run=runs/train/asr_lowres_default
resume=()
[ -f "$run/checkpoints/last.ckpt" ] && resume=(ckpt_path=last) && echo "[main] resuming $run"
# Training gets what is left of the main job's 30 minutes after setup and the corpus, less 5 minutes for the
# language-ID head, the LMs and the transcriptions (scripts/time_budget.sh). A trainer.max_time=... argument
# overrides it.
max_time=$(time_budget "$run" "$t0" 300)
echo "[main] training experiment=asr_lowres for at most $max_time (DD:HH:MM:SS)"
# test=false: the transcription below scores the test split anyway.
$py scripts/train.py experiment=asr_lowres run_name=asr_lowres_default test=false trainer.max_time="$max_time" \
  "${resume[@]}" "$@"
t2=$(date +%s)

echo "[main] picking the log-mel hop the model reads at on dev (a finer one gives character CTC more frames)"
$py scripts/tune_decode_hop.py model="$run/model" dev=data/speech/dev.jsonl

echo "[main] fitting the language-ID head on the frozen encoder (folders without lang= get the detected language)"
$py scripts/build_lid.py model="$run/model" train=data/speech/train.jsonl dev=data/speech/dev.jsonl max_per_lang=150

echo "[main] fitting character LMs on the training text, tuned on dev"
$py scripts/build_lm.py model="$run/model" train=data/speech/train.jsonl dev=data/speech/dev.jsonl

# test: the builder's own held-out sentences and voices; test_ood: voice qualities and a text domain that training
# never saw. Both with the language given by the manifest.
for split in test test_ood; do
  [ -f "data/speech/$split.jsonl" ] || continue
  echo "[main] transcribing data/speech/$split.jsonl (language given)"
  $py scripts/transcribe.py model="$run/model" input="data/speech/$split.jsonl" output="$run/${split}_transcripts.jsonl" \
    progress=false
  echo "[main] $split: CER/WER % by language"
  $py scripts/score.py hyp="$run/${split}_transcripts.jsonl"
done
t3=$(date +%s)
echo "[main] model: $run/model   transcripts: $run/test_transcripts.jsonl $run/test_ood_transcripts.jsonl   logs: $run"
echo "[main] with the language detected instead of given: bash scripts/score_detected.sh $run/model"
echo "[main] wall time: setup+corpus $((t1 - t0)) s, training $((t2 - t1)) s, transcription $((t3 - t2)) s," \
     "total $(((t3 - t0) / 60)) min $(((t3 - t0) % 60)) s"

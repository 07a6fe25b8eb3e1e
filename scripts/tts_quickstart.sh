#!/usr/bin/env bash
# The TTS family's one command, 90 minutes on 2 cores: set up, build the speech corpus with held-out speakers
# (corpus=speech_tts), reuse (or train) the suite's ASR, align the corpus with it (scripts/tts_align.py), train the
# duration model, the neural vocoder and the flow acoustic model, synthesize held-out sentences in the voices of
# held-out speakers (each prompted by another utterance of the same speaker), and print the figures.
#   bash scripts/tts_quickstart.sh
# Budgets (minutes, environment): MAIN_JOB_MINUTES=90 for the whole job; TTS_ASR_MINUTES=20 (only when no ASR is
# found), TTS_DURATION_MINUTES=8, TTS_VOCODER_MINUTES=12; the acoustic model gets what is left less 8 minutes for
# synthesis and scoring (scripts/time_budget.sh). TTS_PER_LANG=12 held-out sentences per language are synthesized.
# TTS_SMOKE=1 runs every step at toy size (one language, a few utterances, a few training steps) under runs/tts_smoke,
# to check the pipeline end to end in minutes; its figures mean nothing.
# Re-running resumes: the corpus, alignments and finished models are kept, trainings continue from their last
# checkpoint, and synthesis skips finished sentences.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh
py=.venv/bin/python
export MAIN_JOB_MINUTES=${MAIN_JOB_MINUTES:-90}
source scripts/time_budget.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

data=data/speech_tts; align=data/speech_tts_align; out=runs/tts; tag=default; per_lang=${TTS_PER_LANG:-12}
corpus_args=(); train_args=(); nfe=16
if [ "${TTS_SMOKE:-0}" = 1 ]; then
  data=runs/tts_smoke/speech_tts; align=runs/tts_smoke/align; out=runs/tts_smoke; tag=smoke; per_lang=3
  corpus_args=(corpus.out_dir="$data" "corpus.langs=[deu_Latn]" corpus.train_per_lang=24 corpus.dev_per_lang=4
               corpus.test_per_lang=6 corpus.test_ood_per_lang=2 corpus.speakers_per_lang=3
               corpus.ood_speakers_per_lang=1 corpus.heldout_speakers_per_lang=2)
  train_args=(trainer.max_steps=3 trainer.val_check_interval=3 trainer.limit_val_batches=1 data.num_workers=0)
  nfe=4
fi
manifests() { echo "data.train_manifest=$1/train.jsonl data.val_manifest=$1/dev.jsonl data.test_manifest=$1/test.jsonl"; }
budget() { printf '00:%02d:%02d:00' $(($1 / 60)) $(($1 % 60)); }  # minutes -> DD:HH:MM:SS
resume() { [ -f "$1/checkpoints/last.ckpt" ] && echo "ckpt_path=last" || true; }

if [ -f "$data/corpus.json" ]; then
  echo "[tts] $data exists; keeping it"
else
  echo "[tts] building the speech corpus with held-out speakers ($data)"
  $py scripts/make_corpus.py corpus=speech_tts "${corpus_args[@]}"
fi
t1=$(date +%s)

asr=runs/train/asr_lowres_default/model
if [ ! -f "$asr/config.json" ]; then
  echo "[tts] no suite ASR at $asr: training experiment=asr_lowres for ${TTS_ASR_MINUTES:-20} minutes"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=asr_lowres run_name=asr_lowres_default test=false \
    trainer.max_time="$(budget "${TTS_ASR_MINUTES:-20}")" $(manifests "$data") $(resume runs/train/asr_lowres_default) \
    "${train_args[@]}"
fi

echo "[tts] aligning $data with the suite's ASR (durations per unit) into $align"
rc=0
$py scripts/tts_align.py asr="$asr" corpus="$data" output_dir="$align" progress=false || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"  # 3: a few rows the ASR can't align are left out
t2=$(date +%s)

dur_run=runs/train/tts_duration_$tag
if [ ! -f "$dur_run/model/config.json" ]; then
  echo "[tts] training experiment=tts_duration for at most ${TTS_DURATION_MINUTES:-8} minutes"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=tts_duration run_name="tts_duration_$tag" test=false \
    trainer.max_time="$(budget "${TTS_DURATION_MINUTES:-8}")" $(manifests "$align") $(resume "$dur_run") \
    "${train_args[@]}"
fi
voc_run=runs/train/vocoder_$tag
if [ ! -f "$voc_run/model/config.json" ]; then
  echo "[tts] training experiment=vocoder for at most ${TTS_VOCODER_MINUTES:-12} minutes"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=vocoder run_name="vocoder_$tag" test=false \
    trainer.max_time="$(budget "${TTS_VOCODER_MINUTES:-12}")" $(manifests "$data") $(resume "$voc_run") \
    "${train_args[@]}"
fi
t3=$(date +%s)

ac_run=runs/train/tts_lowres_$tag
if [ ! -f "$ac_run/model/config.json" ]; then
  max_time=$(time_budget "$ac_run" "$t0" 480)
  echo "[tts] training experiment=tts_lowres for at most $max_time (DD:HH:MM:SS)"
  # shellcheck disable=SC2046
  $py scripts/train.py experiment=tts_lowres run_name="tts_lowres_$tag" test=false trainer.max_time="$max_time" \
    $(manifests "$align") $(resume "$ac_run") "${train_args[@]}"
fi
t4=$(date +%s)

echo "[tts] bundle $out/bundle: acoustic + duration model + vocoder (speech.tts.bundle)"
$py -c "from speech.tts.bundle import save_bundle; save_bundle('$ac_run/model', '$dur_run/model', '$voc_run/model', '$out/bundle')"
echo "[tts] $per_lang held-out sentences per language, each in the voice of its held-out speaker"
$py -c "from speech.tts.infer import write_prompt_requests; write_prompt_requests('$data/test.jsonl', '$out', per_lang=$per_lang)"
rc=0
$py scripts/synthesize.py model="$out/bundle" input="$out/requests.jsonl" output="$out/generated" nfe=$nfe seed=0 \
  progress=false || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"
t5=$(date +%s)

if [ -f benchmarks/tts_quality.py ]; then
  echo "[tts] figures: benchmarks/tts_quality.py"
  $py benchmarks/tts_quality.py model="$out/bundle" requests="$out/requests.jsonl" generated="$out/generated" \
    asr="$asr"
else
  # Intelligibility: the suite's ASR on the generated speech against the same ASR on the recordings of the same
  # sentences (speaker similarity and the rest: benchmarks/tts_quality.py).
  for side in reference generated; do
    input="$out/reference.jsonl"; [ "$side" = generated ] && input="$out/generated/manifest.jsonl"
    $py scripts/transcribe.py model="$asr" input="$input" output="$out/${side}_transcripts.jsonl" progress=false
    echo "[tts] $side speech: CER/WER % of the suite's ASR by language"
    $py scripts/score.py hyp="$out/${side}_transcripts.jsonl"
  done
fi
t6=$(date +%s)
echo "[tts] bundle: $out/bundle   generated: $out/generated   try: python scripts/synthesize.py model=$out/bundle ..."
echo "[tts] wall time: setup+corpus $((t1 - t0)) s, ASR+alignment $((t2 - t1)) s, duration+vocoder $((t3 - t2)) s," \
     "acoustic $((t4 - t3)) s, synthesis $((t5 - t4)) s, figures $((t6 - t5)) s, total $(((t6 - t0) / 60)) min"

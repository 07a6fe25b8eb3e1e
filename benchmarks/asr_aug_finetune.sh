#!/usr/bin/env bash
# Short fine-tune of the main job's model on (augmented) training data, then greedy transcription and CER by voice
# quality on test_ood and test: a cheap way to compare augmentation settings against the same run without them.
#   bash benchmarks/asr_aug_finetune.sh <name> <steps> [train.py overrides...]
# e.g. bash benchmarks/asr_aug_finetune.sh ft_voice 80 data.augment.whisper_prob=0.2 data.augment.prosody_prob=0.25
# Writes runs/train/<name>/ (model, transcripts, scores); run it under the heavy-job lock on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 steps=$2
shift 2
py=.venv/bin/python
base=${BASE_MODEL:-runs/train/asr_lowres_default/model}
run=runs/train/$name
[ -d "$base" ] || { echo "$base: no base model (run bash scripts/quickstart.sh first)" >&2; exit 1; }
t0=$(date +%s)
resume=()
[ -f "$run/checkpoints/last.ckpt" ] && resume=(ckpt_path=last)
$py scripts/train.py experiment=asr_lowres run_name="$name" test=false +model.init_model="$base" model.lr=5e-4 \
  model.warmup_steps=20 trainer.min_epochs=0 trainer.max_epochs=1 data.sorted_epochs=0 +trainer.limit_train_batches="$steps" trainer.max_time=00:01:00:00 \
  "${resume[@]}" "$@"
t1=$(date +%s)
for split in test_ood test; do
  $py scripts/transcribe.py model="$run/model" input="data/speech/$split.jsonl" output="$run/${split}_transcripts.jsonl" \
    decoder=greedy progress=false
  echo "[$name] $split by voice quality (greedy)"
  $py scripts/score.py hyp="$run/${split}_transcripts.jsonl" ref="data/speech/$split.jsonl" by=voice_quality
  $py scripts/score.py hyp="$run/${split}_transcripts.jsonl"
done
echo "[$name] training $((t1 - t0)) s, transcription $(($(date +%s) - t1)) s; steps:" \
  "$($py -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=True)['global_step'])" "$run/checkpoints/last.ckpt")"

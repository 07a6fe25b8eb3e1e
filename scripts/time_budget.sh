# Sourced by the time-capped jobs (quickstart.sh, text_quickstart.sh).
# time_budget RUN_DIR T0 RESERVE: the training budget (DD:HH:MM:SS) of a job that started at T0 (epoch seconds):
# what is left of MAIN_JOB_MINUTES (default 30) less RESERVE seconds for the steps after training, and at least
# 10 minutes, so a slow setup shortens training rather than the deadline. A run that resumes from its last
# checkpoint keeps the budget it started with (RUN_DIR/time_budget), so its LR schedule stays put.
time_budget() {
  local run=$1 t0=$2 reserve=$3 left
  if [ -f "$run/checkpoints/last.ckpt" ] && [ -f "$run/time_budget" ]; then
    cat "$run/time_budget"
    return
  fi
  left=$(( ${MAIN_JOB_MINUTES:-30} * 60 - ($(date +%s) - t0) - reserve ))
  (( left < 600 )) && left=600
  mkdir -p "$run"
  printf '%02d:%02d:%02d:%02d\n' $((left / 86400)) $((left % 86400 / 3600)) $((left % 3600 / 60)) $((left % 60)) \
    | tee "$run/time_budget"
}

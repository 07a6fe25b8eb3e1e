#!/usr/bin/env bash
# Set up and run the checks: ruff, mypy, the default (fast) test suite and the DDP test. Extra args go to
# pytest (and skip the DDP test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,lm,onnx,vision,trace,music,sign,app
echo "[test] ruff"; .venv/bin/ruff check .
echo "[test] mypy"; .venv/bin/mypy
echo "[test] pytest"; .venv/bin/python -m pytest "$@"
# The two-process DDP test is marked slow (interpreter start-ups), but the full run (no args, as CI calls it) keeps it.
if [ $# -eq 0 ]; then
  echo "[test] pytest: DDP"; .venv/bin/python -m pytest -m slow tests/test_ddp.py
fi

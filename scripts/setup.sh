#!/usr/bin/env bash
# Set up a fresh machine: Debian tools (espeak-ng, sox, ffmpeg, festival, flite) when missing, and .venv with the suite.
# Usage: bash scripts/setup.sh [extras]   (default "dev"; the tests use "dev,lm", which adds KenLM decoding)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=${1:-dev}
missing=()
for tool in espeak-ng sox ffmpeg festival flite; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
# Extras with Debian tools of their own: music (abc2midi, fluidsynth and a General MIDI soundfont), app (Chromium
# for the browser tests; Playwright drives Debian's build, it downloads none).
if [[ ",$extras," == *",music,"* ]]; then
  command -v abc2midi >/dev/null 2>&1 || missing+=(abcmidi)
  command -v fluidsynth >/dev/null 2>&1 || missing+=(fluidsynth)
  [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || missing+=(timgm6mb-soundfont)
fi
if [[ ",$extras," == *",app,"* ]]; then command -v chromium >/dev/null 2>&1 || missing+=(chromium); fi
# The speech corpus's recorded voices (corpus.recorded_share): festival's Italian and Hindi diphone voices.
for pkg in festvox-italp16k festvox-itapc16k festival-hi festvox-hi-nsk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# trace: Debian's other festival voices, the deepfake corpus's diphone, unit-selection and HTS generators in seven
# languages.
if [[ ",$extras," == *",trace,"* ]]; then
  for pkg in festvox-kdlpc16k festvox-us-slt-hts festvox-ru festvox-czech-dita festvox-czech-krb \
      festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $py"
  "$py" -m venv .venv
fi
# Reinstall only when the dependency list changed.
stamp=.venv/.suite-installed-${extras//,/-}
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing the suite and its pinned dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  if [[ ",$extras," == *",lm,"* ]]; then .venv/bin/python -m pip install -q --no-deps "pyctcdecode==0.5.0"; fi
  echo "$want" > "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, lightning; print("torch", torch.__version__, "lightning", lightning.__version__)')"

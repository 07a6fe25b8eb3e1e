"""The suite's own TTS as deepfake sources: scripts/synthesize.py run as a subprocess on a bundle directory.

The data layer may not import the TTS family, so it writes a request manifest (text, language, an espeak-ng voice
prompt and its transcript) and lets the synthesis command's batch mode render it (resumable; failures in its
``failed.jsonl``). A bundle that is missing, or speaks none of the corpus languages, leaves its source out.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from common.io import read_jsonl_lenient, write_jsonl
from datamodules.corpus.deepfake_audio import normalise, trim
from datamodules.corpus.deepfake_plan import Clip
from datamodules.corpus.deepfake_sources import Prosody, render_text
from speech.audio import write_audio

log = logging.getLogger(__name__)

SYNTHESIZE = Path(__file__).resolve().parents[2] / "scripts" / "synthesize.py"


def bundle_langs(bundle: str) -> list[str]:
    """Languages a TTS bundle speaks (its acoustic model's ``langs``); ``ValueError`` saying why it can't be used."""
    root = Path(bundle)
    if not root.is_dir():
        raise ValueError(f"TTS bundle {root} not found (train the TTS and save a bundle there: docs/tts.md)")
    acoustic = root
    if (root / "bundle.json").is_file():
        try:
            acoustic = root / json.loads((root / "bundle.json").read_text(encoding="utf-8"))["acoustic"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{root / 'bundle.json'}: not a TTS bundle ({e})") from None
    cfg = acoustic / "config.json"
    if not cfg.is_file():
        raise ValueError(f"TTS bundle {root}: its acoustic model {acoustic} has no config.json")
    try:
        langs = json.loads(cfg.read_text(encoding="utf-8")).get("langs") or []
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg}: invalid JSON ({e.msg})") from None
    return [str(lang) for lang in langs]


def _prompt(root: Path, lang: str, speaker: str, text: str) -> Path:
    """A few seconds of the espeak-ng voice ``speaker`` that the TTS imitates (rendered once, then reused)."""
    path = root / "tts" / "prompts" / lang / f"{re.sub(r'[^A-Za-z0-9_-]', '_', speaker)}.wav"
    if not path.exists():
        write_audio(path, normalise(trim(render_text(speaker, lang, text, Prosody(), seed=0))))
    return path


def render_tts(clips: list[Clip], bundle: str, prompt_texts: dict[str, str], root: Path, nfe: int,
               threads: int) -> dict[str, str]:
    """Synthesize the clips of one TTS source; clip id -> raw wav path, and failures (id -> reason) logged.

    ``prompt_texts`` gives each language's prompt transcript (a training sentence).
    """
    if not clips:
        return {}
    source = clips[0].source
    out_dir = root / "tts" / source
    requests = []
    for c in clips:
        prompt = _prompt(root, c.lang, c.speaker, prompt_texts[c.lang])
        requests.append({"id": c.id, "text": c.text, "lang": c.lang, "prompt": str(prompt.resolve()),
                         "prompt_text": prompt_texts[c.lang], "seed": c.seed % 2**31})
    write_jsonl(out_dir / "requests.jsonl", requests)
    cmd = [sys.executable, str(SYNTHESIZE), f"model={Path(bundle).resolve()}", f"input={out_dir / 'requests.jsonl'}",
           f"output={out_dir / 'out'}", f"nfe={nfe}", f"threads={threads}", "progress=false",
           f"hydra.run.dir={out_dir / 'hydra'}"]
    log.info("%s: synthesizing %d clips with %s", source, len(clips), bundle)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=SYNTHESIZE.parents[1])
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{source}: scripts/synthesize.py failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    done: dict[str, str] = {}
    for row in read_jsonl_lenient(out_dir / "out" / "manifest.jsonl"):
        wav = out_dir / "out" / str(row.get("audio", ""))
        if row.get("id") and wav.is_file():
            done[str(row["id"])] = str(wav)
    return done

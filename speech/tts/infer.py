"""Batch synthesis on ``common.batch_job``: requests from a manifest or a text file, one wav per request.

Requests use the command line's keys (scripts/synthesize.py), per task:

=========  ==========================================  ================================================
task       prompt / prompt_text                         text
=========  ==========================================  ================================================
tts        the voice prompt and its transcript          what to say (``prompt_lang`` when it differs)
sample     the same; ``n`` renditions                   what to say
continue   the utterance to continue, its transcript    what comes next
edit       the utterance to edit, its transcript        the new transcript (the changed words regenerate)
denoise    the noisy utterance, its transcript          (unused) ``span`` = [start, end] s to regenerate
=========  ==========================================  ================================================

A JSONL manifest holds one request a line (``text``, ``lang`` and optionally ``id``, ``prompt``, ``prompt_text``,
``prompt_lang``, ``span``, ``seed``, ``prompt_durations``; paths relative to the manifest); a text file holds one
``text`` a line. Keys a row leaves out come from the command line (a fixed prompt for a whole text file). The
output folder gets ``<id>.wav`` (``<id>_<k>.wav`` for the renditions of ``sample``) and ``manifest.jsonl`` (rows:
id, audio, text, lang, seconds, seed, plus the request's own fields such as speaker, ready for
scripts/transcribe.py); bad requests go to ``failed.jsonl`` with the reason.

Public API::

    items = read_requests(path, defaults)          # Items whose payload is the merged request
    report = synthesize_batch(synth, items, out_dir, task, options, progress=True)
    kwargs = call_args(task, request, options)     # the Synthesizer method's arguments
    rows = prompt_requests(rows, per_lang, seed)   # corpus rows -> requests prompted by another utterance of the
                                                   # same speaker (unseen voices for held-out speakers)
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.batch_job import BatchJob, BatchReport, Failure, Item, JsonlOutput
from speech.audio import write_audio
from speech.tts.synthesizer import Options, Synthesis, Synthesizer

MANIFEST = "manifest.jsonl"
FAILED = "failed.jsonl"
TASKS = ("tts", "sample", "continue", "edit", "denoise")
PATH_KEYS = ("prompt", "audio")
"""Request fields holding audio paths (resolved against the manifest's folder)."""
_UNSAFE = re.compile(r"[^\w.-]+")


def file_stem(item_id: str) -> str:
    """A file name for an id: characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``."""
    stem = _UNSAFE.sub("_", item_id).strip("._") or "item"
    return stem[:120]


def read_requests(path: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None) -> list[Item]:
    """Requests of a ``.jsonl`` manifest or a text file (one text a line), each merged over ``defaults``.

    A broken line, or two ids that would share a file name, becomes a failed item naming the line.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: input not found")
    base = {k: v for k, v in (defaults or {}).items() if v is not None}
    items: list[Item] = []
    stems: dict[str, str] = {}
    lines = p.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        where = f"{p}:{lineno}"
        if not line.strip() or (p.suffix == ".jsonl" and line.lstrip().startswith("#")):
            continue
        if p.suffix.lower() == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                items.append(Item(where, str(p), error=f"{where}: invalid JSON ({e.msg})"))
                continue
            if not isinstance(row, dict):
                items.append(Item(where, str(p), error=f"{where}: expected a JSON object"))
                continue
        else:
            row = {"text": line.strip()}
        item_id = str(row.pop("id", f"{lineno:05d}"))
        for key in PATH_KEYS:
            if isinstance(row.get(key), str) and row[key]:
                raw = Path(row[key]).expanduser()
                row[key] = str(raw if raw.is_absolute() else p.parent / raw)
        stem = file_stem(item_id)
        if stems.setdefault(stem, item_id) != item_id:
            items.append(Item(item_id, str(p), error=f"{where}: id {item_id!r} gives the same file name as "
                                                     f"{stems[stem]!r}"))
            continue
        items.append(Item(item_id, row.get("prompt"), {**base, **row}))
    return items


def _need(req: Mapping[str, Any], task: str, *keys: str) -> None:
    missing = [k for k in keys if req.get(k) in (None, "")]
    if missing:
        raise ValueError(f"task={task} needs {', '.join(k + '=' for k in missing)}")


def call_args(task: str, req: Mapping[str, Any], options: Options) -> dict[str, Any]:
    """The keyword arguments of the ``Synthesizer`` method for ``task``; ``ValueError`` naming a missing key."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    seed = req.get("seed")
    common = {"nfe": options.nfe, "method": options.method, "guidance": options.guidance, "sway": options.sway,
              "seed": None if seed is None else int(seed)}
    durs = req.get("prompt_durations")
    if task in ("tts", "sample"):
        _need(req, task, "text", "lang", "prompt", "prompt_text")
        out = {"text": req["text"], "lang": req["lang"], "prompt": req["prompt"], "prompt_text": req["prompt_text"],
               "prompt_lang": req.get("prompt_lang"), "prompt_durations": durs}
        return out | ({"n": int(req.get("n") or 4)} if task == "sample" else {}) | common
    if task == "continue":
        _need(req, task, "text", "lang", "prompt", "prompt_text")
        return {"wav": req["prompt"], "text": req["prompt_text"], "continuation_text": req["text"],
                "lang": req["lang"], "durations": durs} | common
    if task == "edit":
        _need(req, task, "text", "lang", "prompt", "prompt_text")
        return {"wav": req["prompt"], "text": req["prompt_text"], "new_text": req["text"], "lang": req["lang"],
                "durations": durs} | common
    _need(req, task, "lang", "prompt", "prompt_text")
    span = req.get("span")
    return {"wav": req["prompt"], "text": req["prompt_text"], "lang": req["lang"],
            "span": None if span is None else [float(s) for s in span], "durations": durs} | common


def spoken_text(task: str, req: Mapping[str, Any]) -> str:
    """What the output says: the new text, or the whole transcript for tasks that return the whole utterance."""
    if task == "continue":
        return f"{req['prompt_text']} {req['text']}"
    return str(req["prompt_text"] if task == "denoise" else req["text"])


def write_outputs(outs: Sequence[Synthesis], out_dir: Path, stem: str) -> list[str]:
    """Each rendition as a 16-bit wav, atomically; the file names relative to ``out_dir``."""
    names = [f"{stem}.wav"] if len(outs) == 1 else [f"{stem}_{k}.wav" for k in range(len(outs))]
    for out, name in zip(outs, names):
        write_audio(out_dir / name, out.wav, out.sample_rate)
    return names


def synthesize_batch(synth: Synthesizer, items: Sequence[Item], out_dir: str | os.PathLike[str], task: str,
                     options: Options, progress: bool = True) -> BatchReport:
    """Synthesize every unfinished request into ``out_dir`` (resumable; bad requests in ``failed.jsonl``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def process(batch: list[Item]) -> list[dict[str, Any] | Failure]:
        results: list[dict[str, Any] | Failure] = []
        for it in batch:
            req = it.payload
            try:
                outs = synth.run(task, **call_args(task, req, options))
            except ValueError as e:
                results.append(Failure(str(e)))
                continue
            names = write_outputs(outs, out, file_stem(it.id))
            extra = {k: v for k, v in req.items() if k not in ("text", "lang", "n", "prompt_durations")}
            row = {"audio": names[0], "text": spoken_text(task, req), "lang": req["lang"], "task": task,
                   "seconds": round(outs[0].seconds, 3), "seed": outs[0].seed, **extra}
            if len(names) > 1:
                row["renditions"] = names
            results.append(row)
        return results

    def finished(row: dict[str, Any]) -> bool:  # a row whose wav was deleted is redone
        return all((out / name).is_file() for name in row.get("renditions", [row.get("audio", "")]))

    job = BatchJob(JsonlOutput(out / MANIFEST), process, batch_size=1, reuse=finished, failed_path=out / FAILED,
                   progress=progress, desc=f"synthesizing ({task})", unit="utt")
    return job.run(items)


def prompt_requests(rows: Sequence[Mapping[str, Any]], per_lang: int | None = None,
                    seed: int = 0) -> list[dict[str, Any]]:
    """Requests that say each row's text in its speaker's voice, prompted by another row of the same speaker.

    Rows need audio (resolved), text, lang and speaker; the request keeps the row's audio as ``ref_audio`` (the
    ground truth) and its other fields. ``per_lang`` limits the requests per language (spread over speakers).
    """
    rng = random.Random(seed)
    by_speaker: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_speaker[str(r["speaker"])].append(r)
    chosen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for speaker in sorted(by_speaker):
        utts = by_speaker[speaker]
        for i, r in enumerate(utts):
            if len(utts) < 2:
                break
            p = utts[(i + 1 + rng.randrange(len(utts) - 1)) % len(utts)]  # any other utterance of the speaker
            req = {k: v for k, v in r.items() if k not in ("audio", "audio_raw", "duration", "units", "durations")}
            chosen[str(r["lang"])].append({**req, "id": Path(str(r["audio"])).stem, "ref_audio": str(r["audio"]),
                                           "prompt": str(p["audio"]), "prompt_text": p["text"]})
    out: list[dict[str, Any]] = []
    for lang in sorted(chosen):
        reqs = chosen[lang]
        rng.shuffle(reqs)
        out.extend(sorted(reqs[:per_lang] if per_lang else reqs, key=lambda q: str(q["id"])))
    return out


def write_prompt_requests(manifest: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                          per_lang: int | None = None, seed: int = 0) -> tuple[Path, Path]:
    """``prompt_requests`` of a corpus manifest as ``out_dir``/requests.jsonl, with the ground-truth recordings of
    the same rows as ``out_dir``/reference.jsonl (a manifest for scripts/transcribe.py); both atomically."""
    from common.io import write_jsonl
    from datamodules.manifest import read_manifest

    rows = [{**r, "audio": os.path.abspath(r["audio"])} for r in read_manifest(manifest)]  # the requests live
    reqs = prompt_requests(rows, per_lang, seed)  # in another folder
    out = Path(out_dir)
    refs = [{"id": q["id"], "audio": q["ref_audio"], "text": q["text"], "lang": q["lang"],
             "speaker": q.get("speaker")} for q in reqs]
    write_jsonl(out / "requests.jsonl", reqs)
    write_jsonl(out / "reference.jsonl", refs)
    return out / "requests.jsonl", out / "reference.jsonl"

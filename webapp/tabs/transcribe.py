"""Transcribe tab: an uploaded or recorded file through a CTC model (speech.asr.infer), with word timestamps and
SRT/VTT subtitles to download (speech.asr.formats), in a chosen or detected language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from common.io import atomic_open
from speech.asr.formats import build_cues, render_srt, render_vtt
from speech.asr.infer import Transcriber
from speech.audio import SAMPLE_RATE, decode_audio
from webapp.app import AppSettings
from webapp.discover import Found
from webapp.ui import Loaded, choose, output_dir, upload, user_errors

DETECT = "detect"
"""The language choice that leaves the language to the model's language-ID head (or to no hint at all)."""
WORD_COLUMNS = ["word", "start (s)", "end (s)"]


def languages(t: Transcriber) -> list[str]:
    return [DETECT, *t.languages]


def language_line(row: dict[str, Any], chosen: str | None, has_lid: bool) -> str:
    """What the page says about the language the transcript was decoded in."""
    if chosen:
        return f"Language: **{chosen}** (chosen)"
    if "lang" in row:
        return f"Language: **{row['lang']}** (detected, confidence {float(row['lang_confidence']):.2f})"
    if not has_lid:
        return "Language: not detected (this model has no language-ID head); decoded without a language hint"
    return "Language: not detected"


def write_subtitles(words: list[dict[str, Any]], stem: str) -> tuple[str, str]:
    """SRT and VTT files of the timed words, in a fresh download folder."""
    out = output_dir("subtitles")
    cues = build_cues(words)
    paths = []
    for suffix, render in (("srt", render_srt), ("vtt", render_vtt)):
        path = out / f"{stem}.{suffix}"
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(render(cues))
        paths.append(str(path))
    return paths[0], paths[1]


def build(found: list[Found], settings: AppSettings) -> None:
    """The tab's components and its one event (inside the ``gr.Tab`` the app opened)."""
    by_name = {f.name: f.path for f in found}
    models: Loaded[Transcriber] = Loaded(lambda p: Transcriber.from_pretrained(p, settings.device))
    first = found[0].name
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(list(by_name), value=first, label="Model", elem_id="asr-model")
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech",
                             buttons=["download"], elem_id="asr-audio")
            lang = gr.Dropdown(languages(models(by_name[first])), value=DETECT, label="Language",
                               info="'detect' lets the model's language-ID head choose", elem_id="asr-lang")
            run = gr.Button("Transcribe", variant="primary", elem_id="asr-run")
        with gr.Column():
            text = gr.Textbox(label="Transcript", lines=4, elem_id="asr-text")
            info = gr.Markdown(elem_id="asr-info")
            words = gr.Dataframe(headers=WORD_COLUMNS, label="Word timestamps", elem_id="asr-words")
            with gr.Row():
                srt = gr.File(label="SRT", elem_id="asr-srt")
                vtt = gr.File(label="WebVTT", elem_id="asr-vtt")

    @user_errors
    def pick(name: str, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008 (Gradio finds the tracker by it)
        progress(0.2, desc="loading the model")
        return gr.Dropdown(choices=languages(models(by_name[choose(list(by_name), name)])), value=DETECT)

    @user_errors
    def transcribe(name: str, path: str | None, language: str | None,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (Gradio finds the tracker by it)
        src = upload(path, "speech")
        progress(0.05, desc="loading the model")
        t = models(by_name[choose(list(by_name), name)])
        progress(0.2, desc="reading the audio")
        wave = decode_audio(str(src), SAMPLE_RATE, name=src.name)
        hint = None if language in (None, "", DETECT) else t.resolve_lang(language)
        progress(0.4, desc=f"transcribing {len(wave) / SAMPLE_RATE:.1f} s")
        row = t.transcribe([wave], lang=hint, timestamps="word")[0]
        assert isinstance(row, dict)
        progress(0.9, desc="writing subtitles")
        timed = row.get("words", [])
        table = [[w["word"], round(float(w["start"]), 2), round(float(w["end"]), 2)] for w in timed]
        files = write_subtitles(timed, Path(src.name).stem or "speech") if timed else (None, None)
        line = language_line(row, hint, t.lid is not None)
        if not row["text"]:
            line += "\n\nNo speech recognised."
        return row["text"], f"{line} · {row['duration']:.2f} s of audio", table, *files

    model.change(pick, [model], [lang])
    run.click(transcribe, [model, audio, lang], [text, info, words, srt, vtt])

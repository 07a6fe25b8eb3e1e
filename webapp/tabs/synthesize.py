"""Synthesize tab: text in the voice of an uploaded or recorded prompt, and the editing and denoising modes of a
TTS bundle (speech.tts.synthesizer); the audio and its spectrogram, generated frames marked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from speech.tts.synthesizer import Synthesis, Synthesizer
from webapp.app import AppSettings
from webapp.discover import Found
from webapp.ui import Loaded, choose, output_dir, upload, user_errors

TASKS = [("Speak: the text in the prompt's voice", "tts"),
         ("Edit: the audio saying the text instead of its transcript", "edit"),
         ("Denoise: regenerate a span of the audio from the rest", "denoise")]
"""The modes, as (label, Synthesizer.run task)."""


def spectrogram(out: Synthesis, path: Path) -> str:
    """A PNG of the output's log-mel frames with the generated ones shaded; its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    mel = out.mel.float().numpy().T  # [n_mels, T]
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    ax.imshow(mel, origin="lower", aspect="auto", cmap="magma")
    lo, hi = out.generated
    if hi > lo:
        ax.axvspan(lo - 0.5, hi - 0.5, color="cyan", alpha=0.18, label="generated")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel("frame")
    ax.set_ylabel("mel bin")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


@contextmanager
def count_steps(synth: Synthesizer, nfe: int, progress: gr.Progress) -> Iterator[None]:
    """Report the ODE solver's progress: one forward pass of the flow model per function evaluation."""
    calls = [0]

    def tick(*_: Any) -> None:
        calls[0] += 1
        progress(0.2 + 0.7 * min(calls[0] / nfe, 1.0), desc=f"step {calls[0]} of {nfe}")

    handle = synth.model.register_forward_hook(tick)
    try:
        yield
    finally:
        handle.remove()


def request(task: str, text: str, lang: str, prompt: Path, prompt_text: str, span: tuple[float, float],
            nfe: int, seed: int | None) -> dict[str, Any]:
    """The keyword arguments of ``Synthesizer.run`` for a task (each method names its inputs its own way)."""
    sampler = {"nfe": nfe, "method": "euler", "seed": seed}
    if task == "tts":
        return {"text": text, "lang": lang, "prompt": str(prompt), "prompt_text": prompt_text, **sampler}
    if task == "edit":
        return {"wav": str(prompt), "text": prompt_text, "new_text": text, "lang": lang, **sampler}
    if task == "denoise":
        whole = span[1] <= span[0]
        return {"wav": str(prompt), "text": prompt_text, "lang": lang, "span": None if whole else list(span),
                **sampler}
    raise ValueError(f"unknown mode {task!r}")


def build(found: list[Found], settings: AppSettings) -> None:
    """The tab's components and its event (inside the ``gr.Tab`` the app opened)."""
    by_name = {f.name: f.path for f in found}
    models: Loaded[Synthesizer] = Loaded(lambda p: Synthesizer.from_pretrained(p, device=settings.device))
    first = models(by_name[found[0].name])
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(list(by_name), value=found[0].name, label="TTS bundle", elem_id="tts-model")
            task = gr.Radio(TASKS, value="tts", label="Mode", elem_id="tts-task")
            text = gr.Textbox(label="Text to say (Edit: the new transcript)", lines=2, elem_id="tts-text")
            lang = gr.Dropdown(first.langs, value=first.langs[0] if first.langs else None, label="Language",
                               allow_custom_value=True, elem_id="tts-lang")
            prompt = gr.Audio(sources=["upload", "microphone"], type="filepath",
                              label="Voice prompt (Edit/Denoise: the audio to change), at least 1 s",
                              buttons=["download"], elem_id="tts-prompt")
            prompt_text = gr.Textbox(label="Transcript of that audio", elem_id="tts-prompt-text")
            with gr.Accordion("Denoise span and sampler", open=False):
                with gr.Row():
                    start = gr.Number(0.0, label="Denoise from (s)", minimum=0)
                    end = gr.Number(0.0, label="to (s); 0 = the whole audio", minimum=0)
                nfe = gr.Slider(2, 32, value=16, step=1, label="Solver steps (NFE)", elem_id="tts-nfe")
                seed = gr.Number(0, label="Seed", precision=0)
            run = gr.Button("Synthesize", variant="primary", elem_id="tts-run")
        with gr.Column():
            audio = gr.Audio(label="Output", type="numpy", interactive=False, buttons=["download"],
                             elem_id="tts-audio")
            image = gr.Image(label="Spectrogram (generated frames shaded)", type="filepath", interactive=False,
                             buttons=["download", "fullscreen"], elem_id="tts-spec")
            info = gr.Markdown(elem_id="tts-info")

    @user_errors
    def pick(name: str) -> Any:
        synth = models(by_name[choose(list(by_name), name)])
        return gr.Dropdown(choices=synth.langs, value=synth.langs[0] if synth.langs else None)

    @user_errors
    def synthesize(name: str, mode: str, say: str, language: str, prompt_path: str | None, transcript: str,
                   span_start: float, span_end: float, steps: float, seed_value: float | None,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, str, str]:  # noqa: B008 (Gradio finds the tracker by it)
        src = upload(prompt_path, "voice prompt" if mode == "tts" else "audio")
        progress(0.05, desc="loading the bundle")
        synth = models(by_name[choose(list(by_name), name)])
        kwargs = request(mode, say or "", language, src, transcript or "", (float(span_start or 0),
                         float(span_end or 0)), int(steps), None if seed_value is None else int(seed_value))
        with count_steps(synth, int(steps), progress):
            out = synth.run(mode, **kwargs)[0]
        progress(0.95, desc="drawing the spectrogram")
        png = spectrogram(out, output_dir("tts") / "spectrogram.png")
        lo, hi = out.generated
        rate = synth.spec.frame_rate
        line = (f"{mode}: {out.seconds:.2f} s · seed {out.seed} · generated {lo / rate:.2f}-{hi / rate:.2f} s "
                f"({hi - lo} frames)")
        wav = np.clip(out.wav, -1.0, 1.0)
        return (out.sample_rate, (wav * 32767).astype(np.int16)), png, line

    model.change(pick, [model], [lang])
    run.click(synthesize, [model, task, text, lang, prompt, prompt_text, start, end, nfe, seed],
              [audio, image, info])

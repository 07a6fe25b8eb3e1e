"""Trace-the-source tab: an uploaded or recorded clip through a source tracer (speech.source_trace), with the
predicted source and family, their calibrated probabilities as a bar chart, and "unknown source" when the open-set
score falls below the model's threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from speech.audio import SAMPLE_RATE
from speech.source_trace.tracer import SourceTracer, Trace
from webapp.app import AppSettings
from webapp.discover import Found
from webapp.ui import Loaded, choose, output_dir, upload, user_errors

PROB_COLUMNS = ["head", "class", "probability"]


def verdict(t: Trace) -> str:
    """What the page says the clip is."""
    if t.unknown:
        return (f"## Unknown source\nThe clip is not like any source this model knows (open-set score "
                f"{t.score:.4f} below the threshold {t.threshold:.4f}); the closest known source is "
                f"**{t.closest_source}**.")
    return (f"## Source: {t.source}\nFamily: **{t.family}** · open-set score {t.score:.4f} "
            f"(threshold {t.threshold:.4f})")


def bar_chart(t: Trace, path: Path) -> str:
    """A PNG of the calibrated source and family probabilities, the predicted ones highlighted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heads = (("source", t.source_probs, t.closest_source), ("family", t.family_probs, max(
        t.family_probs, key=lambda k: t.family_probs[k])))
    rows = [len(h[1]) for h in heads]
    fig = Figure(figsize=(6.0, 0.45 * sum(rows) + 1.4), dpi=100)
    FigureCanvasAgg(fig)  # a figure of its own, not pyplot's global state: requests run in worker threads
    axes = fig.subplots(2, 1, gridspec_kw={"height_ratios": rows})
    for ax, (head, probs, best) in zip(axes, heads):
        names = list(probs)[::-1]  # the first class on top
        colour = "#999999" if t.unknown else "#1f5fd6"
        ax.barh(names, [probs[n] for n in names], color=[colour if n == best else "#c8d3e6" for n in names])
        for i, n in enumerate(names):
            ax.text(min(probs[n] + 0.01, 0.88), i, f"{probs[n]:.3f}", va="center", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_title(f"{head} (calibrated probability)", fontsize=9, loc="right")
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return str(path)


def build(found: list[Found], settings: AppSettings) -> None:
    """The tab's components and its event (inside the ``gr.Tab`` the app opened)."""
    by_name = {f.name: f.path for f in found}
    models: Loaded[SourceTracer] = Loaded(lambda p: SourceTracer.from_pretrained(p, settings.device))
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(list(by_name), value=found[0].name, label="Model", elem_id="trace-model")
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio",
                             buttons=["download"], elem_id="trace-audio")
            run = gr.Button("Trace", variant="primary", elem_id="trace-run")
        with gr.Column():
            info = gr.Markdown(elem_id="trace-info")
            chart = gr.Image(label="Calibrated probabilities", type="filepath", interactive=False,
                             buttons=["download"], elem_id="trace-chart")
            table = gr.Dataframe(headers=PROB_COLUMNS, label="Probabilities", elem_id="trace-table")

    @user_errors
    def trace(name: str, path: str | None,
              progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (Gradio finds the tracker by it)
        src = upload(path, "audio")
        progress(0.05, desc="loading the model")
        tracer = models(by_name[choose(list(by_name), name)])
        progress(0.3, desc="reading the audio")
        wave = tracer.wave(src)  # errors name the upload's path, shown by its name
        progress(0.5, desc=f"tracing {len(wave) / SAMPLE_RATE:.1f} s")
        t = tracer.trace_batch([wave])[0]
        progress(0.9, desc="drawing")
        rows = [["source", k, round(v, 4)] for k, v in t.source_probs.items()]
        rows += [["family", k, round(v, 4)] for k, v in t.family_probs.items()]
        return verdict(t), bar_chart(t, output_dir("trace") / f"{src.stem or 'clip'}.png"), rows

    run.click(trace, [model, audio], [info, chart, table])

"""Translate-sign tab: an uploaded pose file (``.pose`` or ``.npy``, MediaPipe Holistic keypoints) drawn as an
animated skeleton (datamodules.corpus.sign_render) and translated by a sign translator (vision.sign) into the
chosen languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from datamodules.corpus import sign_render
from vision.sign.pose_io import DEFAULT_FPS, SUFFIXES
from vision.sign.translator import SignTranslator
from webapp.app import AppSettings
from webapp.discover import Found
from webapp.ui import Loaded, choose, output_dir, upload, user_errors

MAX_GIF_FRAMES = 120
"""Longer clips are drawn with every n-th frame (each frame is a matplotlib drawing)."""
ASPECT = 4 / 3
"""Frame aspect (width / height) of a ``.npy`` clip, which does not record it."""
COLUMNS = ["language", "translation"]


def default_langs(langs: list[str]) -> list[str]:
    return ["eng_Latn"] if "eng_Latn" in langs else langs[:1]


def animation(src: Path) -> tuple[str, str]:
    """A GIF of the clip's skeleton and a line about the clip; ``ValueError`` naming the file when it can't be
    drawn."""
    xyz, aspect = sign_render.load(src)
    step = -(-len(xyz) // MAX_GIF_FRAMES)  # ceil
    out = output_dir("sign") / f"{src.stem or 'pose'}.gif"
    sign_render.save_gif(xyz[::step], aspect or ASPECT, out, fps=DEFAULT_FPS / step, inches=3.0)
    missing = float(np.isnan(xyz[..., 0]).mean())
    return str(out), f"**{src.name}**: {len(xyz)} frames, {missing:.0%} of the points lost by the tracker"


def build(found: list[Found], settings: AppSettings) -> None:
    """The tab's components and its events (inside the ``gr.Tab`` the app opened)."""
    by_name = {f.name: f.path for f in found}
    models: Loaded[SignTranslator] = Loaded(lambda p: SignTranslator.from_pretrained(p, settings.device))
    first = models(by_name[found[0].name]).langs
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(list(by_name), value=found[0].name, label="Model", elem_id="sign-model")
            pose = gr.File(label="Pose file (.pose, or .npy [T, 543, 4])", type="filepath", elem_id="sign-pose")
            langs = gr.CheckboxGroup(first, value=default_langs(first), label="Translate into",
                                     elem_id="sign-langs")
            beam = gr.Slider(1, 8, value=4, step=1, label="Beam", elem_id="sign-beam")
            run = gr.Button("Translate", variant="primary", elem_id="sign-run")
        with gr.Column():
            info = gr.Markdown(elem_id="sign-info")
            anim = gr.Image(label="The signing (skeleton)", type="filepath", interactive=False,
                            buttons=["download"], elem_id="sign-anim")
            table = gr.Dataframe(headers=COLUMNS, label="Translations", elem_id="sign-table")

    @user_errors
    def pick(name: str, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008 (Gradio finds the tracker by it)
        progress(0.2, desc="loading the model")
        have = models(by_name[choose(list(by_name), name)]).langs
        return gr.CheckboxGroup(choices=have, value=default_langs(have))

    @user_errors
    def translate(name: str, path: str | None, targets: list[str] | None, k: float,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (Gradio finds the tracker by it)
        src = upload(path, "pose file")
        if src.suffix.lower() not in SUFFIXES:
            raise gr.Error(f"{src.name}: not a pose file; upload a .pose file or a .npy keypoint array "
                           f"[T, 543, 4].", duration=None)
        if not targets:
            raise gr.Error("Choose at least one language to translate into.", duration=None)
        progress(0.05, desc="loading the model")
        translator = models(by_name[choose(list(by_name), name)])
        progress(0.2, desc="reading the pose file")
        feats = translator.features(src)  # checks the file first: PoseError names it and the reason
        progress(0.3, desc="drawing the skeleton")
        gif, line = animation(src)
        progress(0.6, desc=f"translating into {len(targets)} language{'s' * (len(targets) > 1)}")
        out = translator.translate_embeddings(translator.embed_features([feats]), targets, beam=int(k))[0]
        rows = [[lang, text or "(nothing: the model wrote an empty sentence)"] for lang, text in out.items()]
        return line, gif, rows

    model.change(pick, [model], [langs])
    run.click(translate, [model, pose, langs, beam], [info, anim, table])

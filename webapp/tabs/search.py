"""Search tab: a text query or a file over an index built by scripts/retrieve.py (common.retrieval); results shown
as what they are: images in a gallery, audio as players, text as its line, ABC and MIDI as a piano-roll score
(webapp.score) with the ABC text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from common.retrieval.engine import Hit, Retriever
from webapp.app import AppSettings
from webapp.discover import Found
from webapp.score import ABC_SUFFIXES, SCORE_SUFFIXES, notes_of, piano_roll
from webapp.ui import Loaded, choose, output_dir, upload, user_errors

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
AUDIO_SLOTS = 5
"""Audio results get players for the best this many (a page of players is slow to draw)."""
SCORE_SLOTS = 6
"""ABC and MIDI results get a drawn score for the best this many."""
COLUMNS = ["rank", "id", "score", "text"]


def split_id(r: Retriever, hit_id: str) -> tuple[str, str]:
    """(source file relative to the indexed folder, entry key such as a line number, "" for a whole file)."""
    sources = {s.source for s in r.sources}
    if hit_id in sources or ":" not in hit_id:
        return hit_id, ""
    source, key = hit_id.rsplit(":", 1)
    return (source, key) if source in sources else (hit_id, "")


def locate(source: str, roots: list[Path]) -> Path | None:
    """The file an id names, under the first root that holds it; None when no root does."""
    for root in roots:
        p = root / source
        if p.is_file():
            return p
    return None


def entry_text(path: Path | None, key: str) -> str:
    """The line a text hit names (its key is the line number), else nothing."""
    if path is None or not key.isdigit() or path.suffix.lower() in IMAGE_SUFFIXES + AUDIO_SUFFIXES + SCORE_SUFFIXES:
        return ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    n = int(key)
    return lines[n - 1].strip() if 0 < n <= len(lines) else ""


def roots_for(r: Retriever, index_dir: Path, settings: AppSettings) -> list[Path]:
    """Where result files are looked up: the folder the index was built from, the media folders, then beside the
    index (an index kept inside its folder)."""
    built_from = [r.source_root] if r.source_root is not None else []
    return built_from + [Path(m).expanduser() for m in settings.media] + [index_dir.parent, index_dir]


def draw_score(path: Path, caption: str) -> tuple[str, str]:
    """A piano-roll PNG of an ABC or MIDI result; a file it can't draw gets a caption saying why instead."""
    try:
        notes = notes_of(path)
    except ValueError as e:
        notes, caption = [], f"{caption}: {e}"
    return str(piano_roll(notes, caption, output_dir("score") / f"{path.stem}.png")), caption


def build(found: list[Found], settings: AppSettings) -> None:
    """The tab's components and its event (inside the ``gr.Tab`` the app opened)."""
    by_name = {f.name: f.path for f in found}
    indexes: Loaded[Retriever] = Loaded(lambda p: Retriever.from_pretrained(p))
    with gr.Row():
        with gr.Column(scale=1):
            index = gr.Dropdown(list(by_name), value=found[0].name, label="Index", elem_id="search-index")
            query = gr.Textbox(label="Text query", lines=2, elem_id="search-query")
            file = gr.File(label="...or a file to search with (an image, a sound, a text)", type="filepath",
                           elem_id="search-file")
            top_k = gr.Slider(1, 20, value=6, step=1, label="Results", elem_id="search-k")
            run = gr.Button("Search", variant="primary", elem_id="search-run")
        with gr.Column(scale=2):
            info = gr.Markdown(elem_id="search-info")
            gallery = gr.Gallery(label="Images", columns=3, height="auto", visible=False,
                                 buttons=["download", "fullscreen"], elem_id="search-gallery")
            players = [gr.Audio(label=f"Audio {i + 1}", visible=False, interactive=False,
                                buttons=["download"], elem_id=f"search-audio-{i}") for i in range(AUDIO_SLOTS)]
            scores = gr.Gallery(label="Scores (piano roll: beats across, pitch up)", columns=1, height="auto",
                                object_fit="contain", visible=False, buttons=["download", "fullscreen"],
                                elem_id="search-scores")
            abc = gr.Markdown(visible=False, elem_id="search-abc")
            table = gr.Dataframe(headers=COLUMNS, label="Ranked results", elem_id="search-table")

    def show(r: Retriever, hits: list[Hit], roots: list[Path]) -> list[Any]:
        images: list[tuple[str, str]] = []
        sounds: list[tuple[str, str]] = []
        drawn: list[tuple[str, str]] = []
        tunes: list[str] = []
        rows = []
        for rank, (hit_id, score) in enumerate(hits, start=1):
            source, key = split_id(r, hit_id)
            path = locate(source, roots)
            rows.append([rank, hit_id, round(score, 4), entry_text(path, key)])
            suffix = Path(source).suffix.lower()
            if path is not None and suffix in IMAGE_SUFFIXES:
                images.append((str(path), f"{rank}. {hit_id} ({score:.3f})"))
            elif path is not None and suffix in AUDIO_SUFFIXES and len(sounds) < AUDIO_SLOTS:
                sounds.append((str(path), f"{rank}. {hit_id} ({score:.3f})"))
            elif path is not None and suffix in SCORE_SUFFIXES and len(drawn) < SCORE_SLOTS:
                drawn.append(draw_score(path, f"{rank}. {hit_id} ({score:.3f})"))
                if suffix in ABC_SUFFIXES:
                    tune = path.read_text(encoding="utf-8", errors="replace").strip()
                    tunes.append(f"**{rank}. {hit_id}**\n```\n{tune}\n```")
        audio = [gr.Audio(value=s[0], label=s[1], visible=True) for s in sounds]
        audio += [gr.Audio(value=None, visible=False)] * (AUDIO_SLOTS - len(sounds))
        return [gr.Gallery(value=images, visible=bool(images)), *audio,
                gr.Gallery(value=drawn, visible=bool(drawn)), gr.Markdown("\n\n".join(tunes), visible=bool(tunes)),
                rows]

    @user_errors
    def search(name: str, text: str, path: str | None, k: float,
               progress: gr.Progress = gr.Progress()) -> list[Any]:  # noqa: B008 (Gradio finds the tracker by it)
        if not path and not (text or "").strip():
            raise gr.Error("Type a query or upload a file to search with.", duration=None)
        progress(0.05, desc="loading the index")
        index_dir = by_name[choose(list(by_name), name)]
        r = indexes(index_dir)
        progress(0.3, desc="embedding the query (the first one loads the model)")
        if path:
            src = upload(path, "query file")
            try:
                vectors = r.embed_file(src)
            except ValueError as e:  # name the upload as the user knows it, not by its temporary path
                raise ValueError(str(e).replace(str(src), src.name)) from None
            what = f"file **{src.name}**" + (f" (first of its {len(vectors)} queries)" if len(vectors) > 1 else "")
        else:
            vectors, what = r.embed_texts([text.strip()]), f"“{text.strip()}”"
        progress(0.7, desc="searching")
        hits = r.search(vectors[:1], int(k))[0]
        line = f"{len(hits)} of {len(r)} entries for {what}" if hits else f"The index is empty; nothing for {what}."
        return [line, *show(r, hits, roots_for(r, index_dir, settings))]

    run.click(search, [index, query, file, top_k], [info, gallery, *players, scores, abc, table])

"""The web app in a real browser: pytest-playwright driving Debian's Chromium against the app on a loopback port,
with tiny random models the tests make. Each tab is used as a person would (upload, click, read the page); bad
uploads must give a message in the page and leave the app serving; nothing may leave the machine.

Screenshots go to <pytest tmp>/screenshots/app_<tab>.png, and to docs/figures/ with POLYGLOT_APP_FIGURES=1.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("gradio")
pytest.importorskip("pytest_playwright")
CHROMIUM = os.environ.get("POLYGLOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (bash scripts/setup.sh app)", allow_module_level=True)

from playwright.sync_api import Page, Route, expect  # noqa: E402

from tests.helpers import ROOT  # noqa: E402
from tests.webapp_data import write_inputs, write_models  # noqa: E402
from webapp.app import AppSettings, Built, build_app, launch  # noqa: E402

WAIT = 60_000
"""Milliseconds to wait for a result: generous, the 2-core CI machine is shared."""
expect.set_options(timeout=WAIT)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch arguments: Debian's Chromium, never a downloaded browser."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 900}, "accept_downloads": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """(root, models folder, media folders): the tiny models, made once for every tab."""
    root = tmp_path_factory.mktemp("webapp")
    return root, *write_models(root)


@pytest.fixture(scope="module")
def files(made: tuple[Path, Path, list[Path]]) -> dict[str, Path]:
    """Uploads: the shared ones, and the clips the tracer was calibrated on and the pose files of the sign model."""
    inputs = made[0] / "inputs"
    return {**write_inputs(made[0] / "uploads"), "traced": inputs / "traced.wav", "clicks": inputs / "clicks.wav",
            "sign_npy": inputs / "sign.npy", "sign_pose": inputs / "sign.pose"}


@pytest.fixture(scope="module")
def app(made: tuple[Path, Path, list[Path]]) -> Iterator[tuple[str, Built]]:
    """One app over a models folder of tiny models for every tab, served from a background thread on a free
    loopback port."""
    settings = AppSettings(made[1], [str(m) for m in made[2]])
    built = build_app(settings)
    url = launch(built, settings, "127.0.0.1", free_port(), block=False)
    yield url, built
    built.blocks.close()


@pytest.fixture()
def ui(app: tuple[str, Built], page: Page) -> Iterator[Page]:
    """The app's page; any request that would leave the machine is refused, recorded, and fails the test."""
    outside: list[str] = []

    def guard(route: Route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.set_default_timeout(WAIT)
    page.goto(app[0])
    expect(page.locator("#tab-transcribe-button, button[role=tab]").first).to_be_visible()
    yield page
    assert outside == [], f"the page tried to reach the internet: {outside}"


def open_tab(page: Page, label: str) -> None:
    page.get_by_role("tab", name=label).click()


def pick(page: Page, component: str, option: str) -> None:
    """Choose ``option`` in a Gradio dropdown."""
    page.locator(f"#{component} input").click()
    page.get_by_role("option", name=option).click()
    expect(page.locator(f"#{component} input")).to_have_value(option)


def upload(page: Page, component: str, path: Path) -> None:
    """Upload a file into a Gradio component and wait until the page has taken it."""
    page.locator(f"#{component} input[type=file]").set_input_files(str(path))
    expect(page.locator(f"#{component}").get_by_text(path.name).or_(
        page.locator(f"#{component} a[data-testid=download-link]")).first).to_be_attached()


def clear(page: Page, component: str) -> None:
    page.locator(f"#{component} button[aria-label=Clear]").first.click()


def error_shown(page: Page, text: str) -> None:
    """A Gradio error toast holding ``text`` is visible; it is closed afterwards so the next check starts clean."""
    toast = page.locator("[data-testid=toast-body]").filter(has_text=text)
    expect(toast.first).to_be_visible()
    for close in page.locator("[data-testid=toast-close]").all():
        close.click()
    expect(page.locator("[data-testid=toast-body]")).to_have_count(0)


def screenshot(page: Page, tab: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.getbasetemp() / "screenshots" / f"app_{tab}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 10_000  # a drawn page, not a blank one
    if os.environ.get("POLYGLOT_APP_FIGURES"):
        shutil.copy(out, ROOT / "docs" / "figures" / out.name)


def test_the_page_has_a_tab_per_family_found_and_no_other(ui: Page, app: tuple[str, Built]) -> None:
    tabs = [t.inner_text().strip() for t in ui.get_by_role("tab").all()]
    assert tabs == ["Transcribe", "Synthesize", "Trace the source", "Search", "Translate sign"]
    assert [t.key for t in app[1].tabs] == ["transcribe", "synthesize", "trace", "search", "sign"]
    indexes = len(app[1].discovery.of_kind(("retrieval_index",)))  # 2 with abc2midi and fluidsynth, else 1
    expect(ui.get_by_text(f"transcribe (1), synthesize (1), trace the source (1), search ({indexes}), "
                          "translate sign (1)")).to_be_visible()


def test_transcribe_tab(ui: Page, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    ui.click("#asr-run")  # nothing uploaded yet
    error_shown(ui, "No speech")
    upload(ui, "asr-audio", files["corrupt"])
    ui.click("#asr-run")
    error_shown(ui, "corrupt.wav: unreadable audio")

    clear(ui, "asr-audio")  # the app keeps serving: the next upload is transcribed
    upload(ui, "asr-audio", files["speech"])
    ui.click("#asr-run")
    expect(ui.locator("#asr-info")).to_contain_text("detected, confidence")
    words = ui.locator("#asr-text textarea").input_value().split()
    assert words
    expect(ui.locator("#asr-words")).to_contain_text(words[-1])
    srt = ui.locator("#asr-srt a[href$='speech.srt']").first
    expect(srt).to_be_visible()
    body = ui.request.get(srt.get_attribute("href") or "").text()
    assert body.startswith("1\n00:00:") and " --> " in body
    expect(ui.locator("#asr-vtt a[href$='speech.vtt']").first).to_be_visible()
    screenshot(ui, "transcribe", tmp_path_factory)


def test_synthesize_tab(ui: Page, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    open_tab(ui, "Synthesize")
    ui.locator("#tts-text textarea").fill("ich mag rote äpfel")
    ui.locator("#tts-prompt-text textarea").fill("guten tag welt")
    upload(ui, "tts-prompt", files["short"])
    ui.click("#tts-run")
    error_shown(ui, "too short")

    clear(ui, "tts-prompt")
    upload(ui, "tts-prompt", files["prompt"])
    ui.click("#tts-run")
    expect(ui.locator("#tts-info")).to_contain_text("tts: ")
    expect(ui.locator("#tts-spec img")).to_be_visible()
    expect(ui.locator("#tts-audio a[data-testid=download-link]")).to_be_attached()
    assert "seed 0" in ui.locator("#tts-info").inner_text()
    screenshot(ui, "synthesize", tmp_path_factory)

    ui.get_by_label("Edit: the audio saying the text instead of its transcript").check()
    ui.locator("#tts-text textarea").fill("guten tag welt grüne")
    ui.click("#tts-run")
    expect(ui.locator("#tts-info")).to_contain_text("edit: ")  # a result of its own, not the last one
    ui.locator("#tts-text textarea").fill("guten tag ωορ")  # letters the model has no units for
    ui.click("#tts-run")
    error_shown(ui, "cannot say")


def test_search_tab(ui: Page, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    open_tab(ui, "Search")
    ui.click("#search-run")
    error_shown(ui, "Type a query or upload a file")
    pick(ui, "search-index", "photos_index")
    ui.locator("#search-query textarea").fill("a red square on black")
    ui.click("#search-run")
    expect(ui.locator("#search-info")).to_contain_text("entries for")
    expect(ui.locator("#search-gallery img").first).to_be_visible()
    expect(ui.locator("#search-info")).to_contain_text("6 of 6 entries")  # 4 images + 2 lines of text
    expect(ui.locator("#search-gallery img")).to_have_count(4)
    for hit in ("red.png", "blue.png", "notes.txt:1", "four colourful tiles"):  # a text hit shows its line
        expect(ui.locator("#search-table")).to_contain_text(hit)
    screenshot(ui, "search", tmp_path_factory)

    upload(ui, "search-file", files["wrong"])
    ui.click("#search-run")
    error_shown(ui, "table.csv: no embedder")
    clear(ui, "search-file")
    upload(ui, "search-file", files["broken_png"])
    ui.click("#search-run")
    error_shown(ui, "broken.png")


def test_trace_tab(ui: Page, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    open_tab(ui, "Trace the source")
    ui.click("#trace-run")
    error_shown(ui, "No audio")
    upload(ui, "trace-audio", files["corrupt"])
    ui.click("#trace-run")
    error_shown(ui, "corrupt.wav: unreadable audio")

    clear(ui, "trace-audio")
    upload(ui, "trace-audio", files["clicks"])  # a generator the tracer never saw
    ui.click("#trace-run")
    expect(ui.locator("#trace-info")).to_contain_text("Unknown source")
    expect(ui.locator("#trace-info")).to_contain_text("closest known source")
    clear(ui, "trace-audio")
    upload(ui, "trace-audio", files["traced"])
    ui.click("#trace-run")
    expect(ui.locator("#trace-info")).to_contain_text("Source: harmonic_synth")
    expect(ui.locator("#trace-info")).to_contain_text("Family: formant")
    expect(ui.locator("#trace-chart img")).to_be_visible()
    for name in ("chirp_synth", "square_vocoder", "vocoder"):  # every class has its probability
        expect(ui.locator("#trace-table")).to_contain_text(name)
    screenshot(ui, "trace", tmp_path_factory)


def test_search_tab_over_music(ui: Page, app: tuple[str, Built], files: dict[str, Path],
                               tmp_path_factory: pytest.TempPathFactory) -> None:
    if len(app[1].discovery.of_kind(("retrieval_index",))) < 2:
        pytest.skip("abc2midi / fluidsynth are not installed: no music index")
    open_tab(ui, "Search")
    pick(ui, "search-index", "music_index")
    ui.locator("#search-query textarea").fill("A jig in D major.")
    ui.click("#search-run")
    expect(ui.locator("#search-info")).to_contain_text("6 of 6 entries")  # two tunes as ABC, MIDI and audio
    expect(ui.locator("#search-scores img")).to_have_count(4)  # a piano roll per ABC and MIDI result
    expect(ui.locator("#search-abc")).to_contain_text("K:")  # the ABC text of the ABC results
    expect(ui.locator("#search-audio-0")).to_be_visible()
    expect(ui.locator("#search-audio-1")).to_be_visible()
    expect(ui.locator("#search-gallery")).to_be_hidden()
    for hit in ("t000.abc", "t001.mid", "t000.wav"):
        expect(ui.locator("#search-table")).to_contain_text(hit)
    screenshot(ui, "search_music", tmp_path_factory)

    upload(ui, "search-file", files["broken_abc"])
    ui.click("#search-run")
    error_shown(ui, "broken.abc")


def test_sign_tab(ui: Page, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    open_tab(ui, "Translate sign")
    ui.click("#sign-run")
    error_shown(ui, "No pose file")
    for bad, says in (("wrong", "table.csv: not a pose file"), ("bad_npy", "points.npy: expected a [T, 543, 4]"),
                      ("bad_pose", "broken.pose: unreadable .pose file"), ("empty", "empty.npy: empty file")):
        upload(ui, "sign-pose", files[bad])
        ui.click("#sign-run")
        error_shown(ui, says)
        clear(ui, "sign-pose")

    upload(ui, "sign-pose", files["sign_npy"])  # the app kept serving: the good file is translated
    ui.get_by_label("deu_Latn").check()
    ui.click("#sign-run")
    frames = len(np.load(files["sign_npy"]))
    expect(ui.locator("#sign-info")).to_contain_text(f"sign.npy: {frames} frames")
    expect(ui.locator("#sign-anim img")).to_have_attribute("src", re.compile(r"\.gif"))
    for lang in ("eng_Latn", "deu_Latn"):
        expect(ui.locator("#sign-table")).to_contain_text(lang)
    screenshot(ui, "sign", tmp_path_factory)

    clear(ui, "sign-pose")
    upload(ui, "sign-pose", files["sign_pose"])
    ui.click("#sign-run")
    expect(ui.locator("#sign-info")).to_contain_text(f"sign.pose: {frames} frames")

"""Screenshots of the web app's tabs with the trained models, for the README and docs/app.md:

    python scripts/app_screenshots.py [asr=runs/train/asr_lowres_default/model] [tts=runs/tts/bundle] \
        [index=<retrieval index dir>] [media=<folder the index was built from>] [out=docs/figures]

Each model that exists is linked into a temporary models folder, the app (scripts/app.py) serves it on a free
loopback port, and Debian's Chromium (headless, no network) uses each tab once with an input from the generated
corpora (data/speech, data/speech_tts); the page is saved as <out>/app_<tab>.png. Tabs without a model are left out.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webapp.app import AppSettings, build_app, launch

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT = 600_000  # real models on a shared 2-core machine: give each result up to ten minutes


@dataclass
class Options:
    """Command-line keys (key=value)."""

    asr: str = "runs/train/asr_lowres_default/model"
    """A CTC model directory for the Transcribe tab."""
    tts: str = "runs/tts/bundle"
    """A TTS bundle for the Synthesize tab."""
    index: str = ""
    """A retrieval index (scripts/retrieve.py) for the Search tab."""
    media: str = ""
    """The folder that index was built from."""
    query: str = "A big red star is on the left."
    """The Search tab's text query."""
    out: str = "docs/figures"
    """Where app_<tab>.png go."""
    chromium: str = "/usr/bin/chromium"
    """Debian's Chromium."""


def parse(argv: list[str]) -> Options:
    opts = Options()
    names = {f.name for f in fields(Options)}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in names:
            raise SystemExit(f"app_screenshots: expected key=value with key one of {', '.join(sorted(names))}, "
                             f"got {arg!r}")
        setattr(opts, key, value)
    return opts


def first_row(manifest: Path) -> dict[str, str]:
    row = json.loads(manifest.read_text(encoding="utf-8").splitlines()[0])
    return {**row, "audio": str(manifest.parent / row["audio"])}


def main(argv: list[str]) -> int:
    from playwright.sync_api import expect, sync_playwright

    opts = parse(argv)
    models = Path(tempfile.mkdtemp(prefix="app-screenshots-"))
    for name in ("asr", "tts", "index"):
        src = getattr(opts, name)
        if src and Path(src).is_dir():
            (models / name).symlink_to(Path(src).resolve())
    settings = AppSettings(models, [opts.media] if opts.media else [])
    built = build_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = launch(built, settings, "127.0.0.1", port, block=False)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = [t.key for t in built.tabs]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=opts.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
            page.set_default_timeout(WAIT)
            page.goto(url)
            if "transcribe" in shown:
                row = first_row(ROOT / "data" / "speech" / "test.jsonl")
                page.locator("#asr-audio input[type=file]").set_input_files(row["audio"])
                expect(page.locator("#asr-audio a[data-testid=download-link]")).to_be_attached(timeout=WAIT)
                page.click("#asr-run")
                expect(page.locator("#asr-info")).to_contain_text("Language", timeout=WAIT)
                page.screenshot(path=str(out / "app_transcribe.png"), full_page=True)
            if "synthesize" in shown:
                row = first_row(ROOT / "data" / "speech_tts" / "test.jsonl")
                page.get_by_role("tab", name="Synthesize").click()
                page.locator("#tts-text textarea").fill("Guten Morgen, wie geht es dir heute?")
                page.locator("#tts-prompt-text textarea").fill(row["text"])
                page.locator("#tts-lang input").fill(row["lang"])
                page.keyboard.press("Enter")
                page.locator("#tts-prompt input[type=file]").set_input_files(row["audio"])
                expect(page.locator("#tts-prompt a[data-testid=download-link]")).to_be_attached(timeout=WAIT)
                page.click("#tts-run")
                expect(page.locator("#tts-spec img")).to_be_visible(timeout=WAIT)
                page.screenshot(path=str(out / "app_synthesize.png"), full_page=True)
            if "search" in shown:
                page.get_by_role("tab", name="Search").click()
                page.locator("#search-query textarea").fill(opts.query)
                page.click("#search-run")
                expect(page.locator("#search-info")).to_contain_text("entries", timeout=WAIT)
                page.screenshot(path=str(out / "app_search.png"), full_page=True)
            browser.close()
    finally:
        built.blocks.close()
        shutil.rmtree(models)  # only links to the models: rmtree removes links, never what they point at
    print(f"wrote {', '.join(f'{out}/app_{k}.png' for k in shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

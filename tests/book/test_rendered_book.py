"""The rendered book as a reader meets it: every page opened in headless Chromium.

``make test`` builds the book and installs Debian's chromium first. The pages are served on
localhost; the browser may reach nothing else, except that MathJax's CDN script is answered
from a local copy of the same release (fetched from the npm registry by the Makefile), so
the test sees the math typeset exactly as a reader online does.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
MATHJAX = ROOT / ".cache" / "mathjax"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = "inception-edu/inception_edu"
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]-*.ipynb"))
PAGES = ["book/intro", "book/glossary", "book/bibliography"] + [f"book/{c}" for c in CHAPTERS]


@pytest.fixture(scope="module")
def server():
    if not (HTML / "book" / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` (make test does it first)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements.txt")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `apt-get install chromium` (make test installs it)")
    if not (MATHJAX / "es5" / "tex-mml-chtml.js").exists():
        pytest.fail("the local MathJax copy is missing: make test fetches it into .cache/mathjax")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def _route(server):
    def handle(route):
        url = route.request.url
        if url.startswith(server):
            return route.continue_()
        m = re.search(r"/mathjax@3[^/]*/(es5/.+?)(\?.*)?$", url)
        if m and (MATHJAX / m.group(1)).is_file():
            return route.fulfill(path=str(MATHJAX / m.group(1)))
        return route.abort()  # nothing else is reachable from this machine
    return handle


@pytest.mark.parametrize("page", PAGES)
def test_page_renders(page, server, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = ctx.new_page()
    tab.route("**/*", _route(server))
    errors = []
    tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

    def on_console(msg):
        where = (msg.location or {}).get("url", "")
        # Our own scripts' errors count; a blocked third-party resource does not.
        if msg.type == "error" and where.startswith(server) and "Failed to load resource" not in msg.text:
            errors.append(f"console: {msg.text} ({where})")
    tab.on("console", on_console)

    response = tab.goto(f"{server}/{page}.html", wait_until="load")
    assert response.ok, f"{page}: HTTP {response.status}"
    source = (HTML / f"{page}.html").read_text()
    has_math = 'class="math' in source
    if has_math:
        tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        tab.evaluate("MathJax.startup.promise")
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{page.replace('/', '_')}.png"), full_page=True)
    report = tab.evaluate("""() => {
        const main = document.querySelector('main') || document.body;
        const imgs = [...main.querySelectorAll('img')].map(i => ({src: i.getAttribute('src'),
            ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0}));
        return {text: main.innerText, imgs, mjx: document.querySelectorAll('mjx-container').length,
                links: [...document.querySelectorAll('a')].map(a => a.href)};
    }""")
    ctx.close()

    assert errors == [], f"{page}: {errors}"
    broken = [i["src"] for i in report["imgs"] if not i["ok"]]
    assert broken == [], f"{page}: images that did not load: {broken}"
    if has_math:
        assert report["mjx"] > 0, f"{page}: no math was typeset"
    for raw in ("$$", "\\(", "\\[", "Loading widget", "application/vnd.jupyter.widget"):
        assert raw not in report["text"], f"{page}: raw {raw!r} left in the page"
    if page.startswith("book/") and page.split("/")[1] in CHAPTERS:
        colab = f"https://colab.research.google.com/github/{REPO}/blob/main/{page}.ipynb"
        assert colab in report["links"], f"{page}: no Colab launch link to {colab}"
        assert any(i["src"].endswith("colab-badge.svg") for i in report["imgs"]), f"{page}: no Colab badge"
        assert any("_images/" in (i["src"] or "") for i in report["imgs"]), f"{page}: no figure"


def test_intro_timeline_links_every_chapter(server, browser):
    html = (HTML / "book" / "intro.html").read_text()
    missing = [c for c in CHAPTERS if f'href="{c}.html' not in html]
    assert missing == [], f"the introduction's timeline does not link {missing}"


@pytest.mark.parametrize("i", range(len(CHAPTERS)))
def test_chapters_link_previous_and_next(i):
    html = (HTML / "book" / f"{CHAPTERS[i]}.html").read_text()
    prev_page = "intro" if i == 0 else CHAPTERS[i - 1]
    assert re.search(rf'<a class="left-prev"\s+href="{re.escape(prev_page)}.html"', html), \
        f"{CHAPTERS[i]} does not link back to {prev_page}"
    if i + 1 < len(CHAPTERS):
        assert re.search(rf'<a class="right-next"\s+href="{re.escape(CHAPTERS[i + 1])}.html"', html), \
            f"{CHAPTERS[i]} does not link on to {CHAPTERS[i + 1]}"

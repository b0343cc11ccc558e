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
# The built book; IE_BOOK_HTML points the test at another build (a scratch copy of the book).
HTML = Path(os.environ.get("IE_BOOK_HTML", ROOT / "_build" / "html"))
SHOTS = ROOT / "_build" / "screenshots"
MATHJAX = ROOT / ".cache" / "mathjax"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = "inception-edu/inception_edu"
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]-*.ipynb"))
PAGES = ["book/intro", "book/glossary", "book/bibliography"] + [f"book/{c}" for c in CHAPTERS]
#: The kernel-free explorers each page must carry (inception_edu/widgets.py: Explorer.web), by
#: the name in their root element's data-explorer. A page not listed must have none.
PAGE_EXPLORERS = {
    "book/01-nin-gap": ["explore_head_params"],
    "book/02-bottleneck-googlenet": ["explore_bottleneck"],
    "book/03-auxiliary-classifiers": ["explore_stage_grad_norms"],
    "book/04-bn-inception": ["explore_factorization"],
    "book/05-factorization": ["explore_factorization"],
    "book/06-grid-reduction": ["explore_grid_reduction"],
    "book/07-label-smoothing": ["explore_label_smoothing"],
    "book/08-inception-v3": ["explore_lr_schedule"],
    "book/09-inception-v4": ["explore_uniform_blocks"],
    "book/10-inception-resnet": ["explore_residual_scaling"],
    "book/11-family": ["explore_family", "explore_diagram"],
}
MAX_PAGE_BYTES, MAX_BOOK_BYTES = 3_000_000, 40_000_000


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


def _route(server, blocked=None):
    def handle(route):
        url = route.request.url
        if url.startswith(server) or url.startswith("data:"):
            return route.continue_()
        m = re.search(r"/mathjax@3[^/]*/(es5/.+?)(\?.*)?$", url)
        if m and (MATHJAX / m.group(1)).is_file():
            return route.fulfill(path=str(MATHJAX / m.group(1)))
        if blocked is not None:
            blocked.append(url)
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


# -- page weight -----------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_page_weight(page):
    """A page with its images (and the explorers' frames inside it) stays under 3 MB."""
    path = HTML / f"{page}.html"
    source = path.read_text()
    total = path.stat().st_size
    for src in set(re.findall(r'<img[^>]+src="([^"]+)"', source)):
        if not src.startswith(("data:", "http:", "https:")):
            total += (path.parent / src.split("#")[0]).resolve().stat().st_size
    assert total <= MAX_PAGE_BYTES, f"{page}: {total / 1e6:.2f} MB with its images (at most 3 MB)"


def test_book_weight():
    total = sum(p.stat().st_size for p in HTML.rglob("*") if p.is_file())
    assert total <= MAX_BOOK_BYTES, f"the built book is {total / 1e6:.1f} MB (at most 40 MB)"


# -- the kernel-free explorers ---------------------------------------------------------------
_EXPLORERS = {}


def _python_explorer(name):
    """The library's explorer of that name, to recompute what the page shows."""
    if name not in _EXPLORERS:
        import matplotlib

        matplotlib.use("Agg")
        import inception_edu as ie

        _EXPLORERS[name] = getattr(ie, name)()
    return _EXPLORERS[name]


def _plain(v):
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v


_TIMER = """r => { const form = r.querySelector('form'), img = r.querySelector('img.ie-frame');
    if (!r._timed) { r._timed = true;
      const start = () => { r._t0 = performance.now(); r._t2 = null; };
      form.addEventListener('input', start, true); form.addEventListener('change', start, true);
      const done = () => { const t = () => { r._t2 = performance.now(); }; img.decode().then(t, t); };
      form.addEventListener('input', done); form.addEventListener('change', done); } }"""
_ELAPSED = "async r => { for (let i = 0; i < 200 && r._t2 == null; i++) await new Promise(f => setTimeout(f, 10)); return r._t2 - r._t0; }"


@pytest.mark.parametrize("page", PAGES)
def test_explorers_work_without_a_kernel(page, server, browser):
    """Every explorer on the page: move each control (by keyboard for a range, as a reader
    would) to a value other than its first; the picture changes, the numbers shown are what
    the library computes for the values shown, within 100 ms, with no error and no request
    beyond localhost."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = ctx.new_page()
    blocked, errors = [], []
    tab.route("**/*", _route(server, blocked))
    tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    tab.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    tab.goto(f"{server}/{page}.html", wait_until="load")
    roots = tab.locator(".ie-explorer")
    found = [roots.nth(i).get_attribute("data-explorer") for i in range(roots.count())]
    assert found == PAGE_EXPLORERS.get(page, []), f"{page}: explorers {found}, expected {PAGE_EXPLORERS.get(page, [])}"
    for i, name in enumerate(found):
        root = roots.nth(i)
        controls = root.evaluate("r => JSON.parse(r.querySelector('script.ie-data').textContent).controls")
        assert controls, f"{page}: {name} has no control"
        ex = _python_explorer(name)
        root.evaluate(_TIMER)
        img = root.locator("img.ie-frame")
        before = img.screenshot()
        for c in controls:
            n = len(c["values"])
            current = c["values"].index(json.loads(root.get_attribute("data-values"))[c["name"]])
            target = n - 1 if current != n - 1 else n - 2
            el = root.locator(f'[name="{c["name"]}"]')
            if c["kind"] == "range":
                el.focus()
                el.press("End" if target == n - 1 else "ArrowLeft")
            elif c["kind"] == "select":
                el.select_option(index=target)
            else:
                el.click()
            ms = root.evaluate(_ELAPSED)
            assert ms < 100, f"{page}: {name}.{c['name']} took {ms:.0f} ms to show its frame"
            values = json.loads(root.get_attribute("data-values"))
            assert values[c["name"]] == c["values"][target], f"{page}: {name}.{c['name']} did not move"
            after = img.screenshot()
            assert after != before, f"{page}: {name}.{c['name']} -> {values[c['name']]}: the picture did not change"
            before = after
            shown = root.evaluate("r => [...r.querySelectorAll('dl.ie-numbers dd')].map("
                                  "d => [d.dataset.key, JSON.parse(d.dataset.value)])")
            expected = {k: _plain(v) for k, v in ex.numbers(ex.compute(**values)).items()}
            assert [k for k, _ in shown] == list(expected), f"{page}: {name} shows other numbers"
            for key, value in shown:
                want = expected[key]
                # rel 1e-5: chapter 3's gradient norms are float32 sums whose last digits depend
                # on the thread count the page was drawn with; the formulas agree exactly.
                assert value == (pytest.approx(want, rel=1e-5) if isinstance(want, float) else want), \
                    f"{page}: {name} at {values}: {key} shows {value}, the library computes {want}"
    ctx.close()
    assert errors == [], f"{page}: {errors}"
    assert blocked == [], f"{page}: requests beyond localhost: {blocked}"

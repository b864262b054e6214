"""The built site in a real browser: headless Chromium opens every page and inspects it.

For each HTML page of the book (the small book that the session's ``small_book`` fixture builds,
or the site at ``$HESSINIT_SITE``, e.g. the full book's ``_build/html`` after ``.ci/run``) the
test asserts:

- no JavaScript error (uncaught exceptions and ``console.error``), no request that failed and
  no request leaving the site (the book reads offline);
- every image loaded (``naturalWidth > 0``) and has alt text;
- every formula typeset by MathJax: each ``.math`` element holds an ``mjx-container``, no
  MathJax error node, no raw ``\\(``, ``\\[`` or ``$$`` left in the text, no ``\\text{...}``
  with a backslash inside (MathJax shows it literally);
- nothing wider than the content column, except inside a box that scrolls on its own;
- no log line (TensorFlow, Python warnings, tracebacks) and no ``PosixPath(...)`` in outputs;
- one search box, and a ``<title>`` no other page has.

Without a browser, two more checks of the same site: every internal link resolves (the link
check CI runs on the full book) and the results archive ships with it.

It writes a full-page screenshot of each page to ``$HESSINIT_SCREENSHOTS`` (default:
``_build/screenshots/`` next to the site's ``html/``) for a reviewer to open.

Chromium is the Debian package (``/usr/bin/chromium``, or ``$HESSINIT_CHROMIUM``), driven by
Playwright; the test is skipped when neither is installed, unless ``$CI`` is set.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from hessinit.book.publish import ARCHIVE, broken_links

#: Every test here reads a built site (the small book is executed and built for it), on the
#: pytest-xdist worker that holds the small book (the fixture is requested by name below, so
#: tests/conftest.py cannot see it among the tests' fixtures).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("small_book")]

#: Chromium flags for a quiet, offline, headless run.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The reading width the checks and screenshots use.
VIEWPORT = {"width": 1280, "height": 900}
#: Output text no page may show: library logs, warnings, tracebacks, repr of paths.
LOG_TEXT = re.compile(
    r"^(WARNING|INFO|ERROR|DEBUG|CRITICAL):|^[WIEF]\d{4} \d\d:|tensorflow/core|"
    r"\w+Warning: |Traceback \(most recent call last\)|PosixPath\(|WindowsPath\(|oneDNN",
    re.M,
)
#: Folders of the built site that hold no pages.
NOT_PAGES = {"_static", "_sources", "_images", "_downloads", "screenshots"}

#: Run in the page once MathJax is done; returns what is wrong with the page.
INSPECT = (Path(__file__).with_name("inspect_page.js")).read_text()


def pages(site: Path) -> list[Path]:
    """The HTML pages of the built site at ``site``, relative to it (redirects left out)."""
    return sorted(
        p.relative_to(site)
        for p in site.rglob("*.html")
        if not NOT_PAGES & set(p.relative_to(site).parts[:-1])
        and 'http-equiv="Refresh"' not in p.read_text()[:200]  # index.html redirects
    )


def inspect_site(site: Path, shots: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Open every page of ``site`` in headless Chromium, screenshot it, list what is wrong.

    Args:
        site: The built site (``_build/html``).
        shots: The folder the screenshots go to (one PNG per page, named after its path).

    Returns:
        Page -> its problems (pages without any are left out), and page -> its title.
    """
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    base = site.resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=FLAGS)
        context = browser.new_context(viewport=VIEWPORT)
        for rel in pages(site):
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err, errors=errors: errors.append(f"JavaScript: {err}"))
            page.on(
                "console",
                lambda msg, errors=errors: (
                    msg.type == "error" and errors.append(f"console: {msg.text}")
                ),
            )
            page.on(
                "requestfailed",
                lambda req, errors=errors: errors.append(f"request failed: {req.url}"),
            )
            page.on(
                "request",
                lambda req, errors=errors: (
                    req.url.startswith(("http:", "https:"))
                    and errors.append(f"request leaves the site: {req.url}")
                ),
            )
            page.route(re.compile(r"^https?://"), lambda route: route.abort())
            page.goto(f"{base}/{rel.as_posix()}", wait_until="load")
            found = page.evaluate(INSPECT)
            height = page.evaluate("document.documentElement.scrollHeight")
            page.screenshot(
                path=str(shots / (rel.as_posix().replace("/", "__") + ".png")),
                full_page=height <= 16000,
            )
            page.close()
            titles[str(rel)] = found["title"]
            logs = [line for text in found["logs"] for line in text.splitlines()]
            listed = (
                errors
                + found["images"]
                + found["math"]
                + found["overflow"]
                + [f"log text in an output: {line[:120]}" for line in logs if LOG_TEXT.search(line)]
                + ([f"{found['search']} search boxes"] if found["search"] > 1 else [])
            )
            if listed:
                problems[str(rel)] = listed
        browser.close()
    return problems, titles


def chromium() -> str:
    """The system Chromium: ``$HESSINIT_CHROMIUM`` or the Debian package's binary."""
    return os.environ.get("HESSINIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _browser_or_skip():
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed (pip install -r requirements.txt)")
    if not Path(chromium()).exists() and not os.environ.get("CI"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")


@pytest.fixture
def site(request) -> Path:
    """The built site to inspect: ``$HESSINIT_SITE``, or the small book's ``_build/html``."""
    if os.environ.get("HESSINIT_SITE"):
        return Path(os.environ["HESSINIT_SITE"]).resolve()
    root, code = request.getfixturevalue("small_book")
    assert code == 0
    return root / "_build" / "html"


def test_every_page_reads_well_in_a_browser(site):
    _browser_or_skip()
    shots = Path(os.environ.get("HESSINIT_SCREENSHOTS") or site.parent / "screenshots")
    problems, titles = inspect_site(site, shots)
    print(f"screenshots of {len(titles)} pages: {shots}")
    assert len(titles) >= 5 and (shots / "book__intro.html.png").exists()
    assert not problems, "\n".join(
        f"{page}:\n  " + "\n  ".join(found) for page, found in problems.items()
    )
    repeated = {t for t in titles.values() if list(titles.values()).count(t) > 1}
    assert not repeated, {p: t for p, t in titles.items() if t in repeated}


def test_every_internal_link_of_the_site_resolves(site):
    assert broken_links(site) == []


def test_the_site_ships_the_results_archive(site):
    with zipfile.ZipFile(site / ARCHIVE) as zf:
        names = set(zf.namelist())
    assert {"site/sd_sweep.ipynb", "site/original/mnist-5k.csv"} <= names
    assert any(n.startswith("records/") for n in names)
    intro = (site / "book" / "intro.html").read_text()
    assert f'href="../{ARCHIVE}"' in intro

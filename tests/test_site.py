"""The course's website (`make site`), built from the committed notebooks and opened in headless Chromium.

The site is built once (or reused: course_utils.tools.site skips a build whose inputs hash as the last
one did) into build/site/. Pages are checked as files (every lesson present in course order with its
previous / next links, its run facts and its notebook to download; every internal link resolves; no tag
loads anything from outside) and in Chromium, served by a local server that records every request: each
page loads with no console error and no request leaving 127.0.0.1, every image loads, formulas are
typeset, search finds a word from the middle of a lesson, and the pages work from file:// too.
Screenshots go to build/site-check/. Chromium resolves no name but 127.0.0.1 (its flags are those of
tests/test_browser.py). Skipped where Debian's chromium and chromium-driver are missing.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest

from course_utils.tools import chromium, site

CHROMIUM, CHROMEDRIVER = chromium.CHROMIUM, chromium.CHROMEDRIVER
SHOTS = site.PROJECT_ROOT / "build" / "site-check"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
needs_browser = pytest.mark.skipif(not HAVE_BROWSER, reason="Debian's chromium and chromium-driver are not "
                                                           "installed (make test-packages)")
pytestmark = pytest.mark.timeout(300)
# Tags whose attribute makes the browser fetch something (a link to another site is navigation, not a resource).
RESOURCE_ATTRS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src", "audio": "src",
                  "embed": "src", "object": "data", "track": "src"}
RESOURCE_RELS = {"stylesheet", "icon", "preload", "modulepreload", "prefetch", "manifest", "apple-touch-icon",
                 "shortcut"}


@pytest.fixture(scope="module")
def built() -> Path:
    """build/site/, built now or reused when no input changed since the last build."""
    start = time.perf_counter()
    did_build = site.build()
    print(f"site {'built' if did_build else 'reused'} in {time.perf_counter() - start:.1f} s")
    return site.OUT_DIR


def lesson_pages(out: Path) -> list[Path]:
    return [out / "notebooks" / f"{nb.stem}.html" for nb in site.lessons()]


def html_pages(out: Path) -> list[Path]:
    """Every page of the site (Sphinx's generated index and search pages included)."""
    return sorted(p for p in out.rglob("*.html") if "_static" not in p.parts)


class Page(HTMLParser):
    """A page's ids, links and the resources its tags load."""

    def __init__(self, text: str):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.resources: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in RESOURCE_ATTRS and attrs.get(RESOURCE_ATTRS[tag]):
            self.resources.append(attrs[RESOURCE_ATTRS[tag]])
        if tag == "link" and attrs.get("href") and RESOURCE_RELS & set((attrs.get("rel") or "").lower().split()):
            self.resources.append(attrs["href"])
        if tag == "img" and attrs.get("srcset"):
            self.resources += [part.split()[0] for part in attrs["srcset"].split(",")]


@functools.cache
def parsed(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def outside(url: str) -> bool:
    """True for a URL that would reach past this machine."""
    scheme = urlsplit(url).scheme
    return scheme not in ("", "file", "data", "blob", "about") and urlsplit(url).hostname not in ("127.0.0.1",)


# ---------------------------------------------------------------- facts without a browser


def test_run_facts_come_from_the_notebook_or_say_they_are_not_recorded():
    readme = ("# T\n\n## The lessons\n\n| # | lesson | minutes |\n|---|---|---|\n| [04](x) | y | 0.3 |\n\n"
              "Minutes are wall-clock, measured on 2026-12-02 (`make course`).\n\n## Next\n")
    bare = {"metadata": {"language_info": {"version": "3.11.7"}}, "cells": [
        {"cell_type": "code", "outputs": [{"output_type": "stream", "text": ["device: cpu (1 threads)\n"]}]}]}
    facts = {fact: (value, source) for fact, value, source in site.run_facts(bare, "04_x", readme)}
    assert facts["device"][0] == "cpu (1 threads)"
    assert facts["torch"][0] == "not recorded" and "pins" in facts["torch"][1]  # requirements.txt pins torch
    assert facts["minutes"][0] == "0.3" and "README" in facts["minutes"][1]
    assert facts["date"][0] == "2026-12-02 (README)" and "not recorded in the notebook" in facts["date"][1]
    assert facts["profile"][0] == "default (implied)" and facts["Python"][0] == "3.11.7"
    ran = dict(bare, metadata={"papermill": {"parameters": {"num_epochs": 1}, "end_time": "2027-01-05T10:00:00",
                                             "duration": 90.0}})
    facts = {fact: value for fact, value, _ in site.run_facts(ran, "05_y", readme)}  # 05 is not in the table
    assert facts["profile"] == 'parameters injected: {"num_epochs": 1}'
    assert facts["date"] == "2027-01-05" and facts["minutes"] == "1.5"
    assert "Python" not in facts  # not recorded, so not shown
    committed = dict(bare, metadata={"course_run": {"profile": "default", "date": "2026-12-07", "minutes": 2.1,
                                                    "torch": "2.14.1"}})
    facts = {fact: (value, source) for fact, value, source in site.run_facts(committed, "04_x", readme)}
    assert [facts[k][0] for k in ("profile", "date", "minutes", "torch")] == ["default", "2026-12-07", "2.1", "2.14.1"]
    assert all("recorded in the notebook" in facts[k][1] for k in ("profile", "date", "minutes", "torch"))


def neighbour(text: str, which: str) -> str | None:
    """Where a page's previous (left-prev) or next (right-next) link leads."""
    found = re.search(rf'<a class="{which}"\s+href="([^"]+)"', text)
    return found.group(1) if found else None


def test_every_lesson_is_a_page_in_course_order_with_its_facts_and_notebook(built):
    pages = lesson_pages(built)
    names = [p.stem for p in pages]
    assert names[0].startswith("01_") and names[-1].startswith("A1_"), names
    assert names.index("12a_rnn_basics") < names.index("12b_char_lstm") < names.index("12c_sentiment_lstm") \
        < names.index("13_inference_pipeline")
    for i, path in enumerate(pages):
        assert path.exists(), f"no page for {path.stem}"
        text = path.read_text(encoding="utf-8")
        links = parsed(path).links
        if i > 0:
            assert neighbour(text, "left-prev") == pages[i - 1].name, f"{path.stem}: previous lesson"
        if i + 1 < len(pages):
            assert neighbour(text, "right-next") == pages[i + 1].name, f"{path.stem}: next lesson"
        assert 'id="exercises"' in text, f"{path.stem}: no Exercises section"
        for fact in ("device", "torch", "profile", "date", "minutes"):
            assert f"<strong>{fact}</strong>" in text and f"<th>{fact}</th>" in text, f"{path.stem}: no {fact}"
        download = [link for link in links if link.endswith(f"/{path.stem}.ipynb")]
        assert download, f"{path.stem}: no link to download the notebook"
        notebook = (path.parent / unquote(download[0])).resolve()
        assert notebook.read_bytes() == (site.PROJECT_ROOT / "notebooks" / notebook.name).read_bytes()
    assert "<strong>device</strong> cpu" in pages[0].read_text(encoding="utf-8")  # lesson 01 printed its device


def test_readme_and_docs_are_pages(built):
    for name, sections in site.PAGES:
        text = (built / f"{name}.html").read_text(encoding="utf-8")
        assert sections[0].split(" (")[0] in text, name
    readme = (site.PROJECT_ROOT / "README.md").read_text()
    lessons_page = (built / "lessons.html").read_text(encoding="utf-8")
    assert 'href="notebooks/04_fashion_mnist.html"' in lessons_page  # README's links lead to the lesson pages
    article = lessons_page.split("<article", 1)[1].split("</article>", 1)[0]  # not the navigation
    assert readme.count("| [") == article.count('<a class="reference internal" href="notebooks/')
    for doc in sorted((site.PROJECT_ROOT / "docs").glob("*.md")):
        title = doc.read_text().splitlines()[0].lstrip("# ")
        page = (built / "docs" / f"{doc.stem}.html").read_text(encoding="utf-8")
        assert title.split("`")[0].strip() in page, doc.name


def test_every_internal_link_resolves_and_nothing_is_loaded_from_outside(built):
    broken, remote = [], []
    for path in html_pages(built):
        page = parsed(path)
        for url in page.resources:
            if outside(url):
                remote.append(f"{path.relative_to(built)}: {url}")
        for link in page.links:
            if urlsplit(link).scheme or link.startswith("mailto:"):
                continue
            target, fragment = urldefrag(link)
            file = (path.parent / unquote(target)).resolve() if target else path
            if not file.exists():
                broken.append(f"{path.relative_to(built)}: {link}")
            elif fragment and file.suffix == ".html" and unquote(fragment) not in parsed(file).ids:
                broken.append(f"{path.relative_to(built)}: {link} (no such anchor)")
    for css in built.rglob("*.css"):
        for url in re.findall(r"""(?:url\(\s*['"]?|@import\s+['"])(https?://[^'")\s]+)""", css.read_text()):
            remote.append(f"{css.relative_to(built)}: {url}")
    assert not broken, broken
    assert not remote, remote


# ---------------------------------------------------------------- in Chromium


class Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves the site and records every request (and every one that failed)."""

    requests: list[tuple[str, int]] = []

    def log_message(self, *args):
        pass

    def send_response(self, code, message=None):
        self.requests.append((self.path, code))
        super().send_response(code, message)


@pytest.fixture(scope="module")
def server(built) -> Iterator[str]:
    handler = functools.partial(Recorder, directory=str(built))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium through Debian's chromedriver; it may resolve and reach 127.0.0.1 only."""
    if not HAVE_BROWSER:
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test-packages)")
    from selenium import webdriver

    options = chromium.options(tmp_path_factory.mktemp("chromium-profile"), "1400,1000",
                               "--allow-file-access-from-files")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=chromium.service(), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.get("about:blank")  # what Chromium loads of its own at start (chrome:// pages) is not the site's
    driver.get_log("performance")
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout: float = 20.0, step: float = 0.05):
    """condition()'s first value that is not None or False, polled until `timeout` (then its last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if (value is not None and value is not False) or time.monotonic() > deadline:
            return value
        time.sleep(step)


TYPESET = "return !window.MathJax || !MathJax.startup || !MathJax.startup.promise ? 'none' : 'pending';"
IMAGES_LOADED = """
const imgs = [...document.images];
imgs.forEach(i => { i.loading = 'eager'; });
return imgs.every(i => i.complete) ? imgs.filter(i => i.naturalWidth === 0).map(i => i.src) : null;
"""
MATH = """
const all = document.querySelectorAll('span.math, div.math');
const done = document.querySelectorAll('span.math mjx-container, div.math mjx-container');
return [all.length, done.length];
"""


def visit(browser, url: str) -> dict:
    """Open a page and wait for its images and formulas; what it requested and logged, and its state."""
    browser.get_log("performance")  # drop what earlier pages left
    browser.get_log("browser")
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete")
    broken_images = wait_for(lambda: browser.execute_script(IMAGES_LOADED), 20)
    math = wait_for(lambda: (lambda m: m if m[0] == m[1] else None)(browser.execute_script(MATH)), 20) \
        or browser.execute_script(MATH)
    requested = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    return {"requested": requested, "errors": errors, "broken_images": broken_images, "math": math}


@needs_browser
def test_every_page_loads_offline_with_images_and_formulas(built, server, browser):
    Recorder.requests.clear()
    problems = []
    typeset = 0
    for path in html_pages(built):
        name = path.relative_to(built).as_posix()
        result = visit(browser, urljoin(server, name))
        leaving = [u for u in result["requested"] if not u.startswith((server, "data:", "blob:"))]
        if leaving:
            problems.append(f"{name}: requests leaving 127.0.0.1: {leaving}")
        if result["errors"]:
            problems.append(f"{name}: console errors: {result['errors']}")
        if result["broken_images"] is None or result["broken_images"]:
            problems.append(f"{name}: images not loaded: {result['broken_images']}")
        total, done = result["math"]
        if total != done:
            problems.append(f"{name}: {total - done} of {total} formulas not typeset")
        typeset += done
    failed = [(path, code) for path, code in Recorder.requests if code >= 400]
    assert not problems, problems
    assert not failed, failed
    assert typeset > 20  # the lessons' formulas were there, and MathJax rendered them


@needs_browser
def test_search_finds_a_word_from_the_middle_of_a_lesson(built, server, browser):
    notebooks = site.lessons()
    lesson = notebooks[len(notebooks) // 2]
    cells = [c for c in json.loads(lesson.read_text())["cells"] if c["cell_type"] == "markdown"]

    def words(cell: dict) -> set[str]:
        prose = re.sub(r"`[^`]*`|\$[^$]*\$|\([^)]*\)|\[[^\]]*\]", " ", "".join(cell["source"]))
        return set(re.findall(r"\b[a-z]{6,}\b", prose))

    texts = [nb.read_text().lower() for nb in notebooks]
    candidates = sorted(words(cells[len(cells) // 2]) - words(cells[0]))  # not in the title or the introduction
    word = min(candidates, key=lambda w: (sum(w in t for t in texts), -len(w)))  # the rarest across lessons
    print(f"searching for {word!r}, from the middle of {lesson.stem}")
    browser.get(urljoin(server, f"search.html?q={word}"))
    wait_for(lambda: "Search finished" in browser.execute_script("return document.body.innerText") or None, 30)
    found = browser.execute_script("return [...document.querySelectorAll('#search-results ul.search li a')]"
                                   ".map(a => a.href);")
    browser.get("about:blank")  # search fetches its result pages for their summaries: stop it before the next test
    assert any(f"notebooks/{lesson.stem}.html" in href for href in found or []), (word, lesson.stem, found)


@needs_browser
def test_the_site_works_from_file_and_screenshots(built, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    lesson = built / "notebooks" / "03_training.html"
    for page, shot in ((built / "index.html", "home.png"), (lesson, "lesson.png")):
        result = visit(browser, page.as_uri())
        assert not result["errors"], (page.name, result["errors"])
        assert all(u.startswith(("file:", "data:", "blob:")) for u in result["requested"]), result["requested"]
        assert not result["broken_images"], result["broken_images"]
        assert result["math"][0] == result["math"][1], result["math"]
        browser.save_screenshot(str(SHOTS / shot))
    assert browser.execute_script("return document.querySelectorAll('button.copybtn').length") > 5
    assert "\\partial" not in browser.execute_script("return document.body.innerText")  # no raw TeX shows
    browser.execute_script("document.documentElement.dataset.theme = 'dark'; window.scrollTo(0, 1600);")
    time.sleep(0.3)
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.save_screenshot(str(SHOTS / "lesson-dark.png"))
    assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background
    browser.execute_script("document.documentElement.dataset.theme = 'light';")
    browser.set_window_size(390, 844)  # a phone
    try:
        for page, shot in ((lesson, "lesson-phone.png"), (built / "lessons.html", "lessons-phone.png")):
            browser.get(page.as_uri())
            wait_for(lambda: browser.execute_script("return document.readyState") == "complete")
            time.sleep(0.3)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            browser.save_screenshot(str(SHOTS / shot))
            assert overflow <= 1, f"{page.name} is {overflow} px wider than a phone's screen"
    finally:
        browser.set_window_size(1400, 1000)
    # Search from file:// too: results without their summaries, which a browser refuses to fetch there.
    result = visit(browser, (built / "search.html").as_uri() + "?q=gradient")
    wait_for(lambda: "Search finished" in browser.execute_script("return document.body.innerText") or None, 30)
    found = browser.execute_script("return document.querySelectorAll('#search-results ul.search li a').length")
    errors = result["errors"] + [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert found and not errors, (found, errors)

"""The course as a website: every lesson with its committed outputs, README's sections and docs/, offline.

`python -m course_utils.tools.site build` (`make site`) lays out a Sphinx source folder, build/site-src/,
from the repository's own files, then builds build/site/ with MyST-NB (site/conf.py) WITHOUT executing a
notebook: the committed outputs are the executed ones. Nothing is written by hand twice:

- each lesson is notebooks/<stem>.ipynb, copied with one generated cell after its title: the facts of the run
  that produced its outputs (what the notebook records, or "not recorded") and a link to download it;
- README's sections become pages by inclusion (`PAGES` names the sections; titles are read from README);
- docs/*.md and data/README.md are rendered as they are.

A build is skipped when a hash of its inputs (the files above, site/, this module and the builder's version)
matches the last build's, so a second `make site` or test run costs a second. `serve` serves build/site/
on 127.0.0.1. Viewing needs no network: MathJax is copied into the site from a PyPI package, and the test
(tests/test_site.py) fails on any request that leaves the machine.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from course_utils.core.files import atomic_write
from course_utils.core.report import RUN_FACTS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SITE_DIR = PROJECT_ROOT / "site"  # conf.py, templates, styles: the site's own committed files
SOURCE_DIR = PROJECT_ROOT / "build" / "site-src"  # generated: what Sphinx reads
OUT_DIR = PROJECT_ROOT / "build" / "site"  # the website
DOCTREES = PROJECT_ROOT / "build" / "site-doctrees"  # Sphinx's cache between builds
HASH_FILE = ".inputs-sha256"
BUILDER_PACKAGES = ("sphinx", "myst-nb", "myst-parser", "sphinx-book-theme", "pydata-sphinx-theme",
                    "sphinx-copybutton", "sphinx-mathjax-offline")
MATHJAX_PACKAGE = "sphinx-mathjax-offline"
# What the pages load of MathJax (v3, CommonHTML output); extensions are loaded on demand by \require or autoload.
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")

# (page, README sections in order). A page's title is its first section's heading, read from README.
PAGES = (
    ("quickstart", ("Quick start",)),
    ("lessons", ("The lessons",)),
    ("exercises", ("Exercises",)),
    ("jupyterlab", ("Studying in JupyterLab",)),
    ("running", ("Choosing the device, epochs and profile",)),
    ("deployment", ("Deploying the model you trained", "After the course")),
    ("data", ("Data, online and offline",)),
    ("remote-gpu", ("Working on a remote GPU (Jetson, cloud VM)",)),
    ("troubleshooting", ("Troubleshooting",)),
    ("layout", ("Layout",)),
)
# Where each group of pages sits in the navigation (and so in the previous / next path).
START_PAGES = ("quickstart", "lessons", "jupyterlab", "exercises")
MORE_PAGES = ("running", "deployment", "data", "remote-gpu", "docs/remote", "troubleshooting",
              "docs/troubleshooting", "docs/older-material", "docs/CONTRIBUTING", "docs/STYLE", "data/README",
              "layout")
README_LINK = re.compile(r"\]\(\.\./README\.md(?:#([\w-]+))?\)")  # a lesson's link to a README section


class SiteError(Exception):
    """A missing input or a failed build; main() prints it."""


# ---------------------------------------------------------------- inputs


def lessons(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every notebook in notebooks/, in course order (01..16, 12a/12b/12c after 11, A1 last: their names sort so)."""
    return sorted((root / "notebooks").glob("*.ipynb"))


def readme_sections(readme: str) -> dict[str, str]:
    """README's `## ` sections: heading text -> body (up to the next `## `), code blocks respected."""
    sections, current, in_code = {}, None, False
    for line in readme.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def lesson_minutes(readme: str) -> dict[str, str]:
    """The `minutes` column of README's lesson table, by lesson number (`04` -> `0.3`)."""
    table = readme_sections(readme).get("The lessons", "")
    rows = [line for line in table.splitlines() if line.startswith("| [")]
    header = next((line for line in table.splitlines() if line.startswith("| #")), "")
    columns = [c.strip() for c in header.strip("|").split("|")]
    if "minutes" not in columns:
        return {}
    where = columns.index("minutes")
    found = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        number = re.match(r"\[([^\]]+)\]", cells[0])
        if number and len(cells) > where:
            found[number.group(1)] = cells[where]
    return found


def minutes_measured_on(readme: str) -> str | None:
    """The date README's lesson table says its minutes (and the committed outputs) were measured on."""
    table = readme_sections(readme).get("The lessons", "")
    after = table.split("Minutes are wall-clock", 1)
    found = re.search(r"\b(\d{4}-\d{2}-\d{2})\b", after[1]) if len(after) == 2 else None
    return found.group(1) if found else None


def printed(notebook: dict, pattern: str) -> str | None:
    """The first group of `pattern` matched against a line the notebook's outputs printed (streams, text)."""
    regex = re.compile(pattern)
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                match = regex.search(line)
                if match:
                    return match.group(1).strip()
    return None


def pinned(requirement: str, root: Path = PROJECT_ROOT) -> str | None:
    """The version requirements.txt pins for a package (None when it pins none)."""
    for line in (root / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == requirement.lower() and "==" in line:
            return line.split("==", 1)[1].split("#")[0].strip()
    return None


def run_facts(notebook: dict, stem: str, readme: str, root: Path = PROJECT_ROOT) -> list[tuple[str, str, str]]:
    """(fact, value, where it comes from) for the run whose outputs a committed notebook carries.

    Read in order of trust: what the notebook's metadata records (papermill's, when a run kept it), what the
    notebook itself printed, then README's lesson table. A fact found nowhere says so; none is invented.
    """
    meta = notebook.get("metadata", {})
    paper = meta.get("papermill") or {}
    run = meta.get(RUN_FACTS) or {}  # written by the runner when it commits a notebook's outputs
    number = stem.split("_", 1)[0]
    facts = []
    recorded = "recorded in the notebook by the run that committed its outputs"

    device = printed(notebook, r"^device: (.+)$")
    facts.append(("device", device or "not recorded",
                  "printed by the notebook's set-up cell" if device else "the notebook printed no `device:` line"))

    torch_version = printed(notebook, r"\btorch: (\d[\w.+]*)")
    if run.get("torch"):
        facts.append(("torch", run["torch"], recorded))
    elif torch_version:
        facts.append(("torch", torch_version, "printed by the notebook"))
    else:
        pin = pinned("torch", root)
        facts.append(("torch", "not recorded", "the run does not record it" + (
            f"; requirements.txt pins {pin}" if pin else "")))

    if run.get("profile"):
        facts.append(("profile", run["profile"], recorded))
    elif "parameters" in paper:
        injected = paper.get("parameters") or {}
        facts.append(("profile", "parameters injected: " + json.dumps(injected) if injected else "default",
                      "papermill's metadata in the notebook"))
    else:
        facts.append(("profile", "default (implied)",
                      "not recorded; the runner commits outputs only from runs with no injected parameters"))

    end = paper.get("end_time")
    measured = minutes_measured_on(readme)
    if run.get("date"):
        facts.append(("date", run["date"], recorded))
    elif end:
        facts.append(("date", str(end)[:10], "papermill's metadata in the notebook"))
    else:
        facts.append(("date", f"{measured} (README)" if measured else "not recorded",
                      "not recorded in the notebook; README's lesson table names the run its outputs come from"
                      if measured else "not recorded in the notebook or README"))

    duration = paper.get("duration")
    minutes = lesson_minutes(readme).get(number)
    if run.get("minutes") is not None:
        facts.append(("minutes", f"{float(run['minutes']):.1f}", recorded + " (wall-clock)"))
    elif duration is not None:
        facts.append(("minutes", f"{float(duration) / 60:.1f}", "papermill's metadata in the notebook"))
    else:
        facts.append(("minutes", minutes or "not recorded",
                      "README's lesson table (wall-clock, 2-core CPU, one thread)" if minutes
                      else "not in the notebook nor in README's lesson table"))

    python = meta.get("language_info", {}).get("version")
    if python:
        facts.append(("Python", python, "the kernel's metadata in the notebook"))
    return facts


def facts_cell(notebook: dict, stem: str, readme: str, root: Path = PROJECT_ROOT) -> str:
    """The generated markdown cell a lesson page opens with: its run's facts and the notebook to download."""
    facts = run_facts(notebook, stem, readme, root)
    line = " · ".join(f"**{fact}** {value}" for fact, value, _ in facts)
    rows = "".join(f"<tr><th>{html.escape(fact)}</th><td>{html.escape(value)}</td><td>{html.escape(source)}</td></tr>"
                   for fact, value, source in facts)
    return (
        "```{admonition} The run behind these outputs\n"
        ":class: course-facts\n\n"
        f"{line}\n\n"
        f"{{download}}`Download {stem}.ipynb <../_notebooks/{stem}.ipynb>` · the outputs below are the committed "
        "ones, shown as the course's runner produced them (nothing was executed to build this page).\n\n"
        f"<details><summary>Where each fact comes from</summary><table>{rows}</table></details>\n"
        "```\n"
    )


# ---------------------------------------------------------------- the source folder Sphinx reads


def section_lines(readme: str) -> dict[str, tuple[int, int]]:
    """README's `## ` sections: heading text -> (first line after the heading, line of the next heading), 0-based."""
    lines, starts, in_code = readme.splitlines(), [], False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            starts.append((line[3:].strip(), number))
    bounds = [number for _, number in starts[1:]] + [len(lines)]
    return {heading: (number + 1, end) for (heading, number), end in zip(starts, bounds)}


def include(start: int, end: int) -> str:
    """A MyST include of README's lines [start, end) (build/site-src/README.md is README.md, copied)."""
    return f"```{{include}} README.md\n:start-line: {start}\n:end-line: {end}\n```\n"


def page(name: str, sections: tuple[str, ...], readme: str) -> str:
    """A page made of README sections by inclusion; headings are README's own."""
    known = section_lines(readme)
    missing = [s for s in sections if s not in known]
    if missing:
        raise SiteError(f"site page {name!r} includes README sections that README no longer has: {missing}")
    return "\n".join(f"{'#' if i == 0 else '##'} {section}\n\n{include(*known[section])}"
                     for i, section in enumerate(sections))


def lesson_title(path: Path) -> str:
    """A lesson's title: the first line of its first markdown cell, without the `#`."""
    nb = json.loads(path.read_text())
    first = next(("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"), path.stem)
    return first.strip().splitlines()[0].lstrip("# ").strip()


def index_page(readme: str, notebooks: list[Path]) -> str:
    """The home page: README's title and introduction (by inclusion), the lessons in order, the navigation."""
    title = readme.splitlines()[0].lstrip("# ").strip()
    first_section = min(start for start, _ in section_lines(readme).values()) - 1

    def toc(caption: str, entries) -> str:
        return "```{toctree}\n:caption: " + caption + "\n:maxdepth: 1\n:hidden:\n\n" + "\n".join(entries) + "\n```\n"

    listing = "\n".join(f"1. [{lesson_title(p)}](notebooks/{p.name})" for p in notebooks)
    return (f"# {title}\n\n{include(1, first_section)}\n"
            "## The lessons, in order\n\n" + listing + "\n\n"
            "Start with the [quick start](quickstart.md); the [lesson table](lessons.md) says what each lesson "
            "trains and how long it runs.\n\n"
            + toc("Start here", START_PAGES)
            + toc("Lessons", [f"notebooks/{p.stem}" for p in notebooks])
            + toc("More", MORE_PAGES))


def anchor(heading: str) -> str:
    """The anchor a code host gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def readme_links_to_pages(notebook: dict, readme: str) -> dict:
    """The notebook with each link to a README section pointing at the site page that includes that section."""
    sections = {anchor(heading): name for name, headings in PAGES for heading in headings}
    known = {anchor(heading) for heading in readme_sections(readme)}

    def target(match: re.Match) -> str:
        wanted = match.group(1)
        if wanted and wanted not in known:
            raise SiteError(f"a lesson links to README#{wanted}, a section README does not have")
        return f"](../{sections.get(wanted, 'quickstart')}.md)"

    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = README_LINK.sub(target, text)
    return notebook


def lay_out(src: Path = SOURCE_DIR, root: Path = PROJECT_ROOT) -> None:
    """Write the Sphinx source folder from the repository's files (the folder is replaced)."""
    readme = (root / "README.md").read_text()
    notebooks = lessons(root)
    if not notebooks:
        raise SiteError(f"no notebooks in {root / 'notebooks'}")
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    (src / "_notebooks").mkdir()
    shutil.copy2(root / "README.md", src / "README.md")  # included by the pages, not a page itself
    for folder, pattern in (("docs", "*.md"), ("data", "README.md")):
        (src / folder).mkdir()
        for doc in sorted((root / folder).glob(pattern)):
            shutil.copy2(doc, src / folder / doc.name)
    for path in notebooks:
        shutil.copy2(path, src / "_notebooks" / path.name)  # the download: the notebook byte for byte
        nb = readme_links_to_pages(json.loads(path.read_text()), readme)
        cell = {"cell_type": "markdown", "id": "course-facts", "metadata": {"tags": ["course-facts"]},
                "source": facts_cell(nb, path.stem, readme, root)}
        after_title = 1 if nb["cells"] and nb["cells"][0]["cell_type"] == "markdown" else 0
        nb["cells"].insert(after_title, cell)
        atomic_write(src / "notebooks" / path.name, json.dumps(nb, indent=1) + "\n")
    if (root / "notebooks" / "figures").is_dir():  # pictures the lessons' markdown shows
        shutil.copytree(root / "notebooks" / "figures", src / "notebooks" / "figures")
    for name, sections in PAGES:
        atomic_write(src / f"{name}.md", page(name, sections, readme))
    atomic_write(src / "index.md", index_page(readme, notebooks))


# ---------------------------------------------------------------- building


def builder_versions() -> dict[str, str]:
    """The installed version of each package the build uses ("missing" where one is not installed)."""
    found = {}
    for name in BUILDER_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def input_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every file the site is made from."""
    files = [root / "README.md", root / "requirements.txt", Path(__file__).resolve(), *lessons(root)]
    files += sorted((root / "docs").glob("*.md")) + sorted((root / "data").glob("README.md"))
    files += sorted(p for p in (root / "site").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files += sorted((root / "notebooks" / "figures").glob("*"))
    return files


def inputs_hash(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over every input file's path and bytes and the builder's versions."""
    digest = hashlib.sha256(json.dumps(builder_versions(), sort_keys=True).encode())
    for path in input_files(root):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def mathjax_dir() -> Path:
    """MathJax 3 as the PyPI package sphinx-mathjax-offline ships it."""
    try:
        files = metadata.files(MATHJAX_PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise SiteError(f"{MATHJAX_PACKAGE} is not installed: run `make setup` (requirements.txt pins it)") from None
    for file in files:
        if file.name == "tex-chtml.js":
            return Path(file.locate()).parent
    raise SiteError(f"{MATHJAX_PACKAGE} ships no tex-chtml.js")


def copy_mathjax(out: Path) -> None:
    """Copy what the pages load of MathJax into out/_static/mathjax/."""
    source, target = mathjax_dir(), out / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


def build(out: Path = OUT_DIR, force: bool = False, quiet: bool = True) -> bool:
    """Build the site into `out` unless its inputs are unchanged since the last build; True when it built."""
    missing = [name for name, version in builder_versions().items() if version == "missing"]
    if missing:
        raise SiteError(f"not installed: {', '.join(missing)}; run `make setup` (requirements.txt pins them)")
    digest = inputs_hash()
    stamp = out / HASH_FILE
    if not force and stamp.exists() and stamp.read_text().strip() == digest and (out / "index.html").exists():
        return False
    lay_out()
    if stamp.exists():
        stamp.unlink()
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(SITE_DIR), "-d", str(DOCTREES),
               "-W", "--keep-going", "-j", "1", str(SOURCE_DIR), str(out)]
    if quiet:
        command.insert(3, "-q")
    result = subprocess.run(command, cwd=PROJECT_ROOT, check=False)
    if result.returncode != 0:
        raise SiteError(f"sphinx-build failed (exit {result.returncode}); its messages are above")
    copy_mathjax(out)
    atomic_write(stamp, digest + "\n")
    return True


def serve(out: Path = OUT_DIR, port: int = 8000) -> None:
    """Serve the built site on 127.0.0.1 until Ctrl-C."""
    import http.server

    if not (out / "index.html").exists():
        raise SiteError(f"no site in {out}: run `make site` first")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    for candidate in range(port, port + 20):
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", candidate), handler)
            break
        except OSError:
            print(f"port {candidate} is busy; trying {candidate + 1}", flush=True)
    else:
        raise SiteError(f"ports {port} to {port + 19} are all busy: pick one with PORT=N")
    with server:
        print(f"serving {out} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.site", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build build/site/ (skipped when no input changed)")
    build_cmd.add_argument("--force", action="store_true", help="build even when no input changed")
    build_cmd.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    serve_cmd = commands.add_parser("serve", help="serve build/site/ on 127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000, help="first port tried (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            built = build(force=args.force, quiet=not args.verbose)
            index = OUT_DIR / "index.html"
            print(f"site {'built' if built else 'up to date'}: {index}  (open it, or `make site-serve`)")
        else:
            serve(port=args.port)
    except SiteError as err:
        print(f"site: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The run's HTML report: each executed notebook rendered with nbconvert, and an index.html table linking to them."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

import nbformat

from course_utils.core.files import atomic_write
from course_utils.core.report import readable

INDEX = "index.html"
# nbconvert's lab template fetches require.js, MathJax, mermaid and the widget manager from CDNs when the page is
# opened; the report must open offline, so those blocks are emptied (math then shows as its TeX source, and
# widgets as their text form).
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{% block html_head_js_requirejs %}{% endblock %}
{% block jupyter_widgets %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
"""
STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.minutes { text-align: right; } .pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; }
.interrupted { color: #9a6700; font-weight: bold; }"""
# a notebook that cannot be read or rendered: nbformat and nbconvert raise any of these, depending on the damage
UNRENDERABLE = (OSError, ValueError, KeyError, TypeError, AttributeError, nbformat.ValidationError)


def format_metrics(metrics: dict) -> str:
    """A row's metrics as `name value` pairs, floats as the check cells print them (small ones in e-notation)."""
    return ", ".join(f"{k} {readable(v)}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def exporter():
    """nbconvert's HTMLExporter with the lab template, images embedded and no remote script."""
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
                        template_file="offline.html.j2", embed_images=True)


def render_notebook(notebook: Path, target: Path, html_exporter=None) -> Path:
    """Write `notebook` rendered as a standalone HTML page to `target` (atomically)."""
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata.pop("widgets", None)  # no widget manager offline: outputs fall back to their text form
    body, _ = (html_exporter or exporter()).from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    return atomic_write(target, body)


def index_page(rows: list[dict], links: dict[str, str], title: str) -> str:
    """The index table: notebook (linked where rendered), status, minutes, metrics or the error."""
    cells = []
    for row in rows:
        name = html.escape(row["notebook"])
        link = links.get(row["notebook"])
        name = f'<a href="{html.escape(quote(link))}">{name}</a>' if link else name
        detail = format_metrics(row["metrics"]) if row["status"] == "pass" else row["error"] or ""
        cells.append(f'<tr><td>{name}</td><td class="{row["status"]}">{row["status"]}</td>'
                     f'<td class="minutes">{row["seconds"] / 60:.1f}</td><td>{html.escape(detail)}</td></tr>')
    passed, total = sum(r["status"] == "pass" for r in rows), sum(r["seconds"] for r in rows) / 60
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>", "<table>",
        "<tr><th>notebook</th><th>status</th><th>minutes</th><th>headline metrics</th></tr>", *cells, "</table>",
        f"<p>{passed}/{len(rows)} passed, {total:.1f} notebook-minutes</p>", "</body>", "</html>", ""])


def write_report(rows: list[dict], out_dir: Path, title: str, problems: list[str] | None = None) -> Path:
    """Render each executed notebook beside its .ipynb in `out_dir`, then write index.html; return its path.

    With a `problems` list, a notebook page that cannot be written or rendered is noted there and left unlinked;
    without one, the error is raised.
    """
    html_exporter = exporter()
    links = {}
    for row in rows:
        executed = out_dir / f"{row['notebook']}.ipynb"
        if not executed.is_file():
            continue  # papermill writes the notebook of a failed or stopped run too, up to where it got
        try:
            links[row["notebook"]] = render_notebook(executed, executed.with_suffix(".html"), html_exporter).name
        except UNRENDERABLE as err:
            if problems is None:
                raise
            reason = getattr(err, "strerror", None) or (str(err).strip().splitlines() or [type(err).__name__])[0]
            problems.append(f"{executed.with_suffix('.html').name} ({reason})")
    return atomic_write(out_dir / INDEX, index_page(rows, links, title))

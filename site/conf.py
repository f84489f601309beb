"""Sphinx configuration of the course's website (built by `make site`: course_utils/tools/site.py).

The source folder, build/site-src/, is generated from notebooks/, README.md and docs/; this file and
the styles beside it are the site's only hand-written parts. Notebooks are never executed here.
"""

project = "PyTorch, from tensors to a deployable model"
language = "en"

extensions = ["myst_nb", "sphinx_copybutton"]
exclude_patterns = ["README.md", "_notebooks", "**/.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

# Notebooks: the committed outputs are the executed ones.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Math: MathJax 3 from the site itself (course_utils.tools.site copies it into _static/mathjax/), no CDN.
mathjax_path = "mathjax/tex-chtml.js"

# Copy buttons on code, not on outputs or prompts.
copybutton_selector = "div.cell_input div.highlight pre, div.highlight-bash pre, div.highlight-python pre, " \
                      "div.highlight-default pre, div.highlight-text pre, div.highlight-yaml pre"
copybutton_exclude = ".linenos, .gp, .go"

html_theme = "sphinx_book_theme"
html_title = "PyTorch course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_js_files = ["course.js"]
html_last_updated_fmt = None
html_show_copyright = False
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "use_download_button": False,  # each lesson links to its notebook as committed instead
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
    "navbar_persistent": [],  # search sits in the sidebar (and Ctrl+K), not in a second bar above the page
}
html_favicon = "_static/favicon.svg"  # browsers ask for one; without it every page would log a 404
# Light or dark as the reader's system prefers until they pick one (empty, the theme logs an error on a first visit).
html_context = {"default_mode": "auto"}

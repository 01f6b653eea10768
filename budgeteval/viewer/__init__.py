"""The run viewer: a static site showing where the budget cuts each response (`budgeteval view`).

`build_site(runs, out_dir)` writes a site that opens from `file://` with no network: an overview
(the report table, the figures, the comparison table for several runs), a problem grid (problems x
budgets, fraction correct, with filters) and a sample page (the response with a marker at every
budget's cut, token exact, and each budget's verdict). `serve_site` serves a built site on
127.0.0.1. The payloads are `budgeteval.viewer.data`; the files are `budgeteval.viewer.site`; the
page itself is `static/` (plain HTML, CSS and JavaScript, no external scripts). The viewer reads
run directories only and writes nothing into them.
"""

from budgeteval.viewer.serve import serve_site
from budgeteval.viewer.site import build_site

__all__ = ["build_site", "serve_site"]

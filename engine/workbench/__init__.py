"""The policy team's workbench: a browser page served by `aftersale serve` at /workbench/.

Five pages (Versions, Policy, Compare, Try a ticket, Draft) over JSON endpoints under
/workbench/api/; the page itself and its vendored libraries are package data in `static/`.
Everything the served pages show comes from the engine being served (read-only on `rules/`);
a draft policy is evaluated in a separate, time-bounded process (`drafts.py`), never by it.
"""

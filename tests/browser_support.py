"""A real chromium for the workbench tests: Debian's /usr/bin/chromium driven by Playwright for
Python (never `playwright install`: the system browser is the one CI installs with apt-get).

When chromium or Playwright is missing the browser tests are skipped, and `make test` says so;
`.ci/run` sets AFTERSALE_REQUIRE_BROWSER=1, which turns that skip into a failure."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("AFTERSALE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"  # gitignored (/var/)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package `playwright` is not installed (pip install -e '.[test]')"
    return None


def require_chromium() -> None:
    reason = chromium_missing()
    if reason is None:
        return
    if os.environ.get("AFTERSALE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here (AFTERSALE_REQUIRE_BROWSER=1) but: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")

"""First paint of each workbench page in a real chromium, against a real `aftersale serve`.

    .venv/bin/python bench/bench_workbench_paint.py [--runs 5]

For every page: first-contentful-paint (the browser's own timing) and the time until the page's
own heading is on screen (its data fetched and rendered), each from a fresh browser context (no
cache), median and worst of the runs. Target: first paint under 300 ms locally.
"""
from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ("versions", "policy", "compare", "try", "draft")


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    stderr = open(log, "w")
    process = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "serve", "--port", "0", "--poll", "0",
                                "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log.read_text())
        if match:
            time.sleep(1.0)  # the worker builds its engine after the socket opens
            return process, match.group(1)
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start: " + log.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    process, url = start_server(Path("/tmp/bench-workbench-serve.log"))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            print(f"{'page':10} {'first paint p50':>16} {'max':>7} {'content p50':>12} {'max':>7}  (ms, {args.runs} cold runs)")
            for name in PAGES:
                paints, contents = [], []
                for _ in range(args.runs + 1):  # the first run warms the server's caches
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    page = context.new_page()
                    page.goto(f"{url}/workbench/#/{name}")
                    page.locator("main h1").wait_for()
                    content = page.evaluate("performance.now()")
                    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
                    paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
                    context.close()
                    paints.append(paint)
                    contents.append(content)
                paints, contents = paints[1:], contents[1:]
                print(f"{name:10} {statistics.median(paints):16.0f} {max(paints):7.0f} "
                      f"{statistics.median(contents):12.0f} {max(contents):7.0f}")
            browser.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())

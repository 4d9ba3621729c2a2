# The two commands of the README's quick start. Both set everything up first (scripts/setup.sh).
.PHONY: run test setup validate bench clean

HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 2
CHROMIUM ?= $(or $(AFTERSALE_CHROMIUM),/usr/bin/chromium)

setup:
	@scripts/setup.sh

# The main job: validate the bundled policy, then serve decisions over HTTP.
run: setup
	@.venv/bin/aftersale validate
	@.venv/bin/aftersale serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: setup
	@.venv/bin/ruff check engine tests bench
	@.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
	@.venv/bin/mypy
	@.venv/bin/aftersale validate
	@.venv/bin/aftersale test
	@# the workbench's browser tests need a chromium; without one they are skipped, and said so
	@if [ -x "$(CHROMIUM)" ] || [ "$$AFTERSALE_REQUIRE_BROWSER" = 1 ]; then \
	    .venv/bin/python -m pytest -q; \
	else \
	    echo "make test: NO CHROMIUM at $(CHROMIUM): the workbench's browser tests (pytest -m browser) are NOT run." \
	         "Install it (apt-get install chromium fonts-wqy-microhei) or set AFTERSALE_CHROMIUM." >&2; \
	    .venv/bin/python -m pytest -q -m "not browser"; \
	fi

bench: setup
	@.venv/bin/python bench/bench_decide.py

clean:
	rm -rf .venv build *.egg-info

#!/usr/bin/env bash
# Create .venv with a Python that durable-rules 2.0.28 supports (3.11 or 3.12) and install the
# project into it. Idempotent: re-installs only when pyproject.toml changed. Stops with a message
# naming what is missing (a suitable Python, venv support, a C compiler, the Python headers).
set -euo pipefail
# pure bash (no dirname): never run from anywhere but the project root
case "$0" in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac
[ -f pyproject.toml ] || { echo "setup: run me as scripts/setup.sh from the project (no pyproject.toml in $PWD)" >&2; exit 1; }
VENV=.venv
STAMP="$VENV/.installed"

supported() {  # $1 = interpreter; true when it runs and is 3.11.x or 3.12.x
  "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=(python3.12 python3.11 python3)
  # pyenv keeps interpreters that its shims refuse to run unless selected: look at them directly.
  for root in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12* "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.11*; do
    [ -x "$root/bin/python" ] && candidates+=("$root/bin/python")
  done
  candidates+=(/usr/bin/python3.12 /usr/bin/python3.11 /usr/local/bin/python3.12 /usr/local/bin/python3.11)
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && supported "$c" && "$c" -m venv --help >/dev/null 2>&1 \
       && "$c" -c 'import ensurepip' >/dev/null 2>&1; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

if [ -x "$VENV/bin/python" ] && ! supported "$VENV/bin/python"; then
  echo "setup: $VENV uses an unsupported Python; recreating it" >&2
  rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(find_python); then
    found=$(command -v python3 >/dev/null 2>&1 && python3 --version 2>&1 || echo "no python3")
    # printf, not cat: say it even on a machine stripped down to bash and a wrong python3
    printf '%s\n' \
      "setup: no usable Python 3.11 or 3.12 found (have: $found)." \
      "  durable-rules 2.0.28 builds and imports only on Python 3.11 and 3.12 (on 3.13 its import fails:" \
      "  undefined symbol PyEval_CallObject). Install one, with venv support, then re-run, e.g.:" \
      "    apt-get install python3.11 python3.11-venv python3.11-dev     (Debian 12)" \
      "    pyenv install 3.12                                              (any system)" \
      "  or point at one: PYTHON=/path/to/python3.12 make test" >&2
    exit 1
  fi
  echo "setup: creating $VENV with $PY ($("$PY" --version 2>&1))" >&2
  "$PY" -m venv "$VENV"
fi

if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
  if ! command -v gcc >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
    echo "setup: no C compiler (gcc): durable-rules builds from source. Install it: apt-get install gcc" >&2
    exit 1
  fi
  inc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  if [ ! -f "$inc/Python.h" ]; then
    echo "setup: Python headers missing ($inc/Python.h): durable-rules builds from source." >&2
    echo "  Install them, e.g.: apt-get install python3-dev (or python3.11-dev / python3.12-dev)" >&2
    exit 1
  fi
  echo "setup: installing the project and its dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
  "$VENV/bin/python" -c 'import durable_rules_engine' || {
    echo "setup: durable_rules_engine built but does not import with $("$VENV/bin/python" --version)" >&2; exit 1; }
  touch "$STAMP"
fi

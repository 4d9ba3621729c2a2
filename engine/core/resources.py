"""Where the bundled files live: the JSON schemas (`schemas/`) and the bundled policy (`rules/`).

Both stay at the top of the checkout, where the policy team and their editors find them (the YAML
files' `yaml-language-server` lines point at `schemas/`). A wheel carries copies inside the
package, as `engine/_bundled/{schemas,rules}` (setup.py's build step puts them there), read
through `importlib.resources`; an editable install has no such copies and reads the checkout.
AFTERSALE_RULES overrides the rules directory.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout (meaningful in an editable install)
BUNDLED_PACKAGE_DIR = "_bundled"  # inside `engine/` in a wheel; keep equal to setup.py's


def bundled_dir(name: str) -> Path:
    """`schemas` or `rules`: the wheel's packaged copy when installed, else the checkout's."""
    packaged = resources.files("engine").joinpath(BUNDLED_PACKAGE_DIR, name)
    if packaged.is_dir():
        # pip installs a wheel unpacked, so the resource is a real directory: the service and the
        # history tools walk it and watch it like any rules directory.
        return Path(str(packaged))
    return REPO_ROOT / name


SCHEMAS_DIR = bundled_dir("schemas")


def default_rules_dir() -> Path:
    env = os.environ.get("AFTERSALE_RULES")
    if env:
        return Path(env)
    return bundled_dir("rules")


def schema_path(name: str) -> Path:
    return SCHEMAS_DIR / name


def read_schema(name: str) -> str:
    """The text of `schemas/<name>` (a path below schemas/, e.g. `requests/decide.schema.json`)."""
    return schema_path(name).read_text(encoding="utf-8")


def example_path(*parts: str) -> Path | None:
    """A file of the checkout's `examples/` (not shipped in the wheel), None when absent."""
    path = REPO_ROOT.joinpath("examples", *parts)
    return path if path.is_file() else None

"""Where the bundled files live. The package runs from a checkout (editable install), so the
bundled `rules/` and `schemas/` sit beside the `engine/` package; AFTERSALE_RULES overrides."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"


def default_rules_dir() -> Path:
    env = os.environ.get("AFTERSALE_RULES")
    if env:
        return Path(env)
    return REPO_ROOT / "rules"


def schema_path(name: str) -> Path:
    return SCHEMAS_DIR / name

"""The bundled rules, loaded once, for callers of the mapping that pass no policy (the CLI
loader). The service passes its own Engine, so a hot reload is never bypassed."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def bundled_engine():
    from engine.api import Engine

    return Engine.from_directory()

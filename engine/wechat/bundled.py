"""The bundled rules, loaded once, for callers of the mapping that pass no policy (the CLI
loader). The service passes its own Engine, so a hot reload is never bypassed."""
from __future__ import annotations

from typing import TYPE_CHECKING

from functools import lru_cache

if TYPE_CHECKING:
    from engine.api import Engine


@lru_cache(maxsize=1)
def bundled_engine() -> Engine:
    from engine.api import Engine

    return Engine.from_directory()

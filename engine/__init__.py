"""After-sales negotiation policy engine (WeChat Shop 售后协商).

Public API (see docs/design.md): `Engine` (load once, decide many) and the errors it raises.
Imports are lazy so that `import engine` stays cheap for tools that only need the loader.
"""
from __future__ import annotations

__all__ = [
    "Engine", "VersionInfo", "EngineError", "PolicyError", "InputError", "TicketError",
    "PayloadError", "UnknownVersionError", "NoVersionError", "UnknownActionError",
]


def __getattr__(name: str) -> object:
    if name in ("Engine", "VersionInfo"):
        from engine import api
        return getattr(api, name)
    if name in __all__:
        from engine.core import errors
        return getattr(errors, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

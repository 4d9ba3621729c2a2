"""The service's settings: built by `aftersale serve`, carried to worker processes in the
environment (uvicorn starts workers with an import string, so the environment is the one channel
that reaches a freshly spawned process)."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from engine.core.resources import SCHEMAS_DIR, default_rules_dir

PREFIX = "AFTERSALE_SERVE_"


@dataclass(frozen=True)
class ServiceSettings:
    rules_dir: Path
    decision_log: str | None = None          # a file path, "-" for stdout, None for off
    max_body_bytes: int = 1 << 20            # 1 MiB: a ticket is ~1 KB; a full batch ~100 KB
    poll_interval: float = 1.0               # rules directory poll, seconds; 0 turns polling off
    schemas_dir: Path = SCHEMAS_DIR
    admin_token: str | None = None           # when set, /admin/* needs `Authorization: Bearer <token>`
    offload: bool = False                    # run engine calls in the threadpool (for measuring only)

    def to_env(self) -> dict[str, str]:
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            env[PREFIX + f.name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "ServiceSettings":
        environ = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return environ.get(PREFIX + name.upper())

        return cls(
            rules_dir=Path(get("rules_dir") or default_rules_dir()),
            decision_log=get("decision_log") or None,
            max_body_bytes=int(get("max_body_bytes") or cls.max_body_bytes),
            poll_interval=float(get("poll_interval") or cls.poll_interval),
            schemas_dir=Path(get("schemas_dir") or SCHEMAS_DIR),
            admin_token=get("admin_token") or None,
            offload=(get("offload") or "0") == "1",
        )

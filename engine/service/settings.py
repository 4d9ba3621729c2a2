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
    decision_log_mode: str = "required"      # required (answer after fdatasync) | best-effort
    decision_log_rotate_bytes: int = 0       # rotate past this size; 0: never by size
    decision_log_rotate_seconds: float = 0.0  # rotate at each such period of the clock; 0: never by time
    decision_log_mask: str = ""              # comma-separated fields written as sha256:<16 hex>
    request_timeout: float = 10.0            # seconds to receive a whole request (connections.py)
    max_connections: int = 0                 # per worker; 0: the open-file limit minus a reserve

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
        """The inverse of to_env: each field from AFTERSALE_SERVE_<NAME>, converted by its default's type."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if not raw:
                continue
            default = f.default
            if f.name in ("rules_dir", "schemas_dir"):
                values[f.name] = Path(raw)
            elif isinstance(default, bool):
                values[f.name] = raw == "1"
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.setdefault("rules_dir", Path(default_rules_dir()))
        return cls(**values)  # type: ignore[arg-type]

"""This process's id, read once: os.getpid() is a real system call (~5 µs on this machine) and the
hot path asks for it on every decision (the decision log's `pid`, prometheus-client's multiprocess
values). Refreshed in a forked child, so processes running side by side never share a value."""
from __future__ import annotations

import os

_pid = os.getpid()


def _refresh() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh)


def process_id() -> int:
    return _pid

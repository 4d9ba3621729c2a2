"""The decision log's file: whole-line appends shared by several worker processes, torn-tail
repair, rotation by size and by time.

Every write of a batch of lines happens under an exclusive `flock` on the file:
- before writing, the holder checks that the path still names its open file (another worker may
  have rotated it: then it reopens) and that the file ends with a newline (a writer killed in the
  middle of a write leaves a torn tail: it is moved aside to `FILE.torn-<time>` and cut off), so a
  line is never appended to a fragment;
- the batch goes out in `write` calls of whole lines; if one fails (ENOSPC, EIO) the file is cut
  back to where the batch started, so a failed write leaves no partial line either;
- `fdatasync` when the caller needs the lines durable (the `required` mode) before unlocking.
Per batch: the lock pair, one `stat` of the path, a one-byte `pread` of the tail unless this
process wrote it, the `write`s (measured per system call in bench/README.md: each costs a few
µs on the event loop and releases the GIL).

Rotation: when the file would pass `rotate_bytes`, or when its last write was in an earlier
`rotate_seconds` period of the wall clock (e.g. 3600: one file per clock hour), it is renamed to
`FILE.<UTC time>` under the lock and a new FILE is created; the other workers notice at their next
batch. A pipe or terminal (`-` = stdout) is written in chunks of at most PIPE_BUF whole lines,
the size POSIX keeps atomic; it is never rotated or synced.
"""
from __future__ import annotations

import fcntl
import logging
import os
import select
import stat
import time
from datetime import datetime, timezone

logger = logging.getLogger("aftersale.service")

_TAIL_CHUNK = 64 * 1024


class LogFileError(Exception):
    """The decision log cannot be used at all (missing directory, no permission, not a file)."""


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def check_writable(target: str) -> None:
    """Fail early and plainly: the start of `aftersale serve` calls this before any socket opens."""
    if target == "-":
        return
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise LogFileError(f"decision log {target}: directory {directory} does not exist")
    try:
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LogFileError(f"decision log {target}: cannot open for appending: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LogFileError(f"decision log {target}: not a regular file")
        LogFile._repair_tail(fd, target)
    except OSError as exc:
        raise LogFileError(f"decision log {target}: cannot repair its tail: {exc.strerror}") from None
    finally:
        os.close(fd)


class LogFile:
    def __init__(self, target: str, rotate_bytes: int = 0, rotate_seconds: float = 0) -> None:
        self.target = target
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.rotations = 0
        self.repairs = 0
        self.opened = 0          # files opened so far: a change means `fd` names another file
        self._identity = (0, 0)  # (device, inode) of the open file
        self._end = -1           # where this process's last write ended: -1 unknown
        if target == "-":
            self.fd, self.regular = 1, stat.S_ISREG(os.fstat(1).st_mode)
            self.shared_path = False
        else:
            self.fd = self._open()
            self.regular, self.shared_path = True, True
        self.chunk = 1 << 20 if self.regular else select.PIPE_BUF

    def _open(self) -> int:
        self.opened += 1
        fd = os.open(self.target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)
        self._end = -1
        return fd

    def write_lines(self, lines: list[bytes], durable: bool) -> None:
        """Append whole lines; all or none (raises OSError and leaves the file as it was)."""
        if not self.shared_path:
            self._write_chunks(lines)
            return
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            incoming = sum(len(line) for line in lines)
            size = self._maybe_rotate(self._follow_rotation(), incoming)
            # a file that ends where this process's last write ended ends with one of its whole
            # lines: no need to read its last byte (the other writers' batches still are checked)
            if size != self._end and self._repair_tail(self.fd, self.target, size):
                self.repairs += 1
                size = os.fstat(self.fd).st_size
            try:
                self._write_chunks(lines)
                self._end = size + incoming
                if durable:
                    os.fdatasync(self.fd)
            except OSError:
                self._end = -1
                try:
                    os.ftruncate(self.fd, size)  # no partial line survives a failed batch
                except OSError:
                    logger.exception("decision log: cannot cut back a failed write; the next writer repairs the tail")
                raise
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _write_chunks(self, lines: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > self.chunk:
                self._write_all(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write_all(b"".join(chunk))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def _follow_rotation(self) -> os.stat_result:
        """Under the lock: if the path no longer names our file (rotated by another worker, or
        removed by an operator), reopen it and take the lock on the new one. Returns the file's
        status, read through its path: one system call per batch, where comparing it with an
        fstat of the descriptor took two (our open descriptor keeps the inode number from being
        reused, so the same device and inode mean the same file)."""
        while True:
            try:
                st = os.stat(self.target)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == self._identity:
                return st
            old, self.fd = self.fd, self._open()
            fcntl.flock(old, fcntl.LOCK_UN)
            os.close(old)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def _maybe_rotate(self, st: os.stat_result, incoming: int) -> int:
        """Rotate if the file is due; returns the size of the file to write to."""
        if st.st_size == 0:
            return 0
        by_size = self.rotate_bytes and st.st_size + incoming > self.rotate_bytes
        by_time = self.rotate_seconds and (int(st.st_mtime // self.rotate_seconds)
                                           != int(time.time() // self.rotate_seconds))
        if not (by_size or by_time):
            return st.st_size
        rotated = f"{self.target}.{_stamp()}"
        os.rename(self.target, rotated)
        self.rotations += 1
        logger.info("decision log rotated to %s (%s)", rotated, "size" if by_size else "time")
        return self._follow_rotation().st_size

    @staticmethod
    def _repair_tail(fd: int, target: str, size: int | None = None) -> bool:
        """A file that does not end with a newline has a torn last line (its writer died during
        the write). Move the fragment aside and cut it off. Returns whether it did."""
        size = os.fstat(fd).st_size if size is None else size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return False
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            block = os.pread(fd, end - start, start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            end = start
        else:
            cut = 0
        fragment = os.pread(fd, size - cut, cut)
        aside = f"{target}.torn-{_stamp()}"
        with open(aside, "wb") as out:
            out.write(fragment)
        os.ftruncate(fd, cut)
        logger.warning("decision log %s: a torn last line (%d bytes, its writer died mid-write) was moved to %s",
                       target, len(fragment), aside)
        return True

    def close(self) -> None:
        if self.shared_path:
            os.close(self.fd)

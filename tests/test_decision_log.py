"""The decision log as an audit log (decision_log.py, log_file.py): whole lines only, torn tails
repaired, rotation, masking, an unusable path refused at start (exit 3), and a full disk handled
per mode against the real server on a real tiny filesystem (a 256 KiB tmpfs when this machine lets
the suite mount one; else the kernel's own file-size limit, RLIMIT_FSIZE, which fails writes the
same way)."""
from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import hashlib
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.service import decision_record
from engine.service.decision_log import REQUIRED, DecisionLog, LogUnavailable, PENDING_COMMITS
from engine.service.decision_record import canonical_json, input_sha256, log_time, may_hold_float, new_decision_id
from engine.service.log_file import LogFile, check_writable

from server_support import ADMIN, REPO, RULES, Server
from test_slow_clients import BODY

HEADERS = {"content-type": "application/json"}


def _crockford(value: int) -> str:
    """The ULID encoding by its definition: 26 base-32 digits, most significant first."""
    digits = []
    for _ in range(26):
        digits.append("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[value & 31])
        value >>= 5
    return "".join(reversed(digits))


def test_decision_ids_are_ulids_that_sort_by_time_and_do_not_repeat(monkeypatch):
    ids = [new_decision_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    millis = int(time.time() * 1000)
    assert abs(int(_crockford_decode(ids[-1][:10])) - millis) < 60_000  # the first 48 bits: now, in ms
    # the pairwise table encodes exactly as the definition, at the edges and in between
    for value in (0, 1, 31, 32, 1023, 1024, (1 << 128) - 1, 0x0123456789ABCDEF0123456789ABCDEF):
        monkeypatch.setattr(decision_record.time, "time", lambda v=value: (v >> 80) / 1000)
        monkeypatch.setattr(decision_record._id_random, "getrandbits", lambda bits, v=value: v & ((1 << 80) - 1))
        expected_millis = value >> 80
        assert new_decision_id() == _crockford((expected_millis << 80) | (value & ((1 << 80) - 1)))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)


@settings(max_examples=600, deadline=None)
@given(_JSON)
def test_the_canonical_form_is_the_standard_librarys_sorted_compact_json(body):
    definition = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert canonical_json(body) == definition
    assert input_sha256(body) == hashlib.sha256(definition).hexdigest()


def test_floats_orjson_writes_differently_take_the_definitions_path():
    for value in (1e-05, 4.349e-06, -8.06e-09, 0.0001, 1e16, 2.5):
        body = {"x": value, "s": "v1.2"}
        assert canonical_json(body) == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=64) | st.text(alphabet="0123456789.eE a\"", max_size=24).map(str.encode))
def test_the_float_test_is_the_regex_digit_then_dot_or_exponent(data):
    assert may_hold_float(data) == bool(re.search(rb"[0-9][.eE]", data))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))   # 1970 .. 2100
def test_the_log_time_is_the_datetime_iso_form_in_milliseconds(nanos):
    expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=nanos // 1000)
    original = time.time_ns
    try:   # not the monkeypatch fixture: hypothesis runs many examples in one test call
        time.time_ns = lambda: nanos
        stamped = log_time()
    finally:
        time.time_ns = original
    assert stamped == expected.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _crockford_decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value


def record(log: DecisionLog, i: int, **extra) -> None:
    log.record(decision_id=f"d{i}", kind="decide", body={"i": i}, result={"actions": {"agree": {"allowed": True}}},
               version="v1", bundle_hash="h", actor="merchant", ticket_id=f"AS-{i}", **extra)


def lines_of(*paths: Path) -> list[dict]:
    out = []
    for path in paths:
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path} ends in a torn line"
        out += [json.loads(line) for line in data.decode("utf-8").splitlines()]
    return out


# -- the file --------------------------------------------------------------------------------------

def test_a_torn_tail_is_moved_aside_and_cut_off_at_start(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"decision_id":"a"}\n{"decision_id":"b","ti')
    check_writable(str(path))
    assert path.read_bytes() == b'{"decision_id":"a"}\n'
    (aside,) = tmp_path.glob("log.jsonl.torn-*")
    assert aside.read_bytes() == b'{"decision_id":"b","ti'


def test_a_writer_never_appends_to_a_fragment_left_by_a_killed_one(tmp_path):
    path = tmp_path / "log.jsonl"
    log_file = LogFile(str(path))
    log_file.write_lines([b'{"n":1}\n'], durable=True)
    with open(path, "ab") as other:           # another worker died in the middle of its write
        other.write(b'{"n":2,"tor')
    log_file.write_lines([b'{"n":3}\n'], durable=True)
    assert path.read_bytes() == b'{"n":1}\n{"n":3}\n' and log_file.repairs == 1


def test_a_batch_costs_one_stat_and_reads_the_tail_only_after_another_writer(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    mine, other = LogFile(str(path)), LogFile(str(path))
    mine.write_lines([b'{"n":1}\n'], durable=False)
    calls: list[str] = []
    for name in ("stat", "fstat", "pread"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    mine.write_lines([b'{"n":2}\n'], durable=False)     # the tail is its own: not read
    assert calls == ["stat"]
    other.write_lines([b'{"n":3}\n'], durable=False)    # the tail is another writer's: read
    mine.write_lines([b'{"n":4}\n'], durable=False)
    assert calls == ["stat", "stat", "pread", "stat", "pread"]
    assert path.read_bytes() == b'{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n'


def test_rotation_by_size_keeps_every_line_whole(tmp_path):
    path = tmp_path / "log.jsonl"
    log = DecisionLog(str(path), REQUIRED, rotate_bytes=4096)
    for i in range(200):  # one line per batch: a batch is never split across files
        record(log, i)
        log.drain()
    log.close()
    files = sorted(tmp_path.glob("log.jsonl*"))
    assert len(files) > 3 and all(f.stat().st_size <= 4096 for f in files)
    assert sorted(e["decision_id"] for e in lines_of(*files)) == sorted(f"d{i}" for i in range(200))


def test_rotation_by_time_starts_a_file_each_period(tmp_path):
    path = tmp_path / "log.jsonl"
    log = DecisionLog(str(path), REQUIRED, rotate_seconds=1)
    record(log, 1)
    log.drain()
    time.sleep(1.1)
    record(log, 2)
    log.close()
    rotated = sorted(tmp_path.glob("log.jsonl.2*"))
    assert len(rotated) == 1 and [e["decision_id"] for e in lines_of(rotated[0])] == ["d1"]
    assert [e["decision_id"] for e in lines_of(path)] == ["d2"]


def test_masked_fields_are_hashed_not_written(tmp_path):
    path = tmp_path / "log.jsonl"
    log = DecisionLog(str(path), mask=["ticket_id", "actor"])
    record(log, 7)
    log.close()
    (entry,) = lines_of(path)
    assert entry["ticket_id"].startswith("sha256:") and "AS-7" not in path.read_text()
    assert entry["actor"].startswith("sha256:") and entry["decision_id"] == "d7"


def test_required_mode_hands_the_request_a_commit_that_fails_when_the_write_fails(tmp_path):
    path = tmp_path / "log.jsonl"

    async def scenario() -> tuple[list, list]:
        log = DecisionLog(str(path), REQUIRED)
        commits: list = []
        PENDING_COMMITS.set(commits)
        record(log, 1)
        ok = await asyncio.gather(*commits, return_exceptions=True)
        log.file.fd, saved = os.open(os.devnull, os.O_RDONLY), log.file.fd   # writes now fail (EBADF)
        log.file.shared_path = False
        commits.clear()
        record(log, 2)
        failed = await asyncio.gather(*commits, return_exceptions=True)
        os.close(log.file.fd)
        log.file.fd, log.file.shared_path = saved, True
        assert log.status()["ok"] is False and log.last_error
        log.close()
        return ok, failed

    ok, failed = asyncio.run(scenario())
    assert ok == [None] and isinstance(failed[0], LogUnavailable)


def test_required_lines_written_on_the_event_loop_survive_rotation_and_leave_no_descriptor_behind(tmp_path):
    """Required mode on a loop: the loop writes each iteration's lines, the thread syncs them by a
    dup of the file's descriptor; a rotation in between hands the thread a new dup."""
    path = tmp_path / "log.jsonl"
    open_fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731

    async def scenario() -> list:
        log = DecisionLog(str(path), REQUIRED, rotate_bytes=2048)
        outcomes = []
        for round_ in range(30):          # 30 loop iterations of 4 decisions each
            commits: list = []
            PENDING_COMMITS.set(commits)
            for i in range(4):
                record(log, round_ * 4 + i)
            assert log.status()["queue"] >= 4          # not written before the iteration ends
            outcomes += await asyncio.gather(*commits, return_exceptions=True)
        assert log.written == 120 and log.file.opened > 3
        log.close()
        return outcomes

    before = open_fds()
    outcomes = asyncio.run(scenario())
    assert outcomes == [None] * 120
    assert open_fds() == before
    files = sorted(tmp_path.glob("log.jsonl*"))
    assert len(files) > 3
    assert sorted(e["decision_id"] for e in lines_of(*files)) == sorted(f"d{i}" for i in range(120))


def test_a_log_in_a_missing_directory_fails_the_start_with_exit_3(tmp_path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "engine.cli.main", "serve", "--port", "0", "--workers", "2",
                             "--decision-log", str(tmp_path / "missing" / "decisions.jsonl")],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 3
    assert "directory" in result.stderr and "does not exist" in result.stderr
    assert "listening" not in result.stderr and time.monotonic() - started < 30


# -- a full disk, against the real server ------------------------------------------------------------

class TinyDisk:
    """A directory on which writes fail with ENOSPC (a 256 KiB tmpfs) or, where this machine does
    not let the suite mount, a limit on file size (RLIMIT_FSIZE: EFBIG) for the server process."""

    def __init__(self, tmp: Path, mount: bool = True) -> None:
        self.dir = tmp / "disk"
        self.dir.mkdir()
        self.mounted = mount and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(self.dir)],
                                      capture_output=True).returncode == 0
        self.filler = self.dir / "filler"
        if self.mounted:  # leave ~24 KiB for the log: a few dozen lines
            with open(self.filler, "wb") as out:
                out.write(b"\0" * (256 - 24) * 1024)

    def preexec(self):
        if self.mounted:
            return None
        limit = 2 << 20  # prometheus-client's mmap files need 1 MiB each: the log gets a little past that

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return apply

    def free(self, log: Path) -> None:
        if self.mounted:
            self.filler.unlink()
        # (RLIMIT_FSIZE cannot be lifted from outside: freeing is checked only on tmpfs)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)


def decide_until_refused(url: str, limit: int = 20000) -> tuple[list[str], list[httpx.Response]]:
    answered, refused = [], []
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(limit):
            response = client.post("/v1/decide", content=BODY, headers=HEADERS)
            if response.status_code == 200:
                answered.append(response.json()["decision_id"])
            else:
                refused.append(response)
                if len(refused) >= 5:
                    break
    return answered, refused


@pytest.mark.slow
def test_disk_full_in_required_mode_refuses_with_503_and_loses_no_answered_decision(tmp_path):
    # (TinyDisk(tmp_path, mount=False), the RLIMIT_FSIZE way, passes too: 44 s, so it runs only
    # where mounting is not allowed)
    disk = TinyDisk(tmp_path)
    log = disk.dir / "decisions.jsonl"
    server = Server(tmp_path, RULES, "--poll", "0", "--decision-log", str(log), "--decision-log-mode", "required",
                    preexec_fn=disk.preexec())
    try:
        answered, refused = decide_until_refused(server.url)
        assert answered and refused, "the disk never filled"
        error = refused[0].json()["error"]
        assert refused[0].status_code == 503 and error["code"] == "decision_log_unavailable"
        ready = httpx.get(server.url + "/readyz", headers=ADMIN)
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert ready.json()["decision_log"]["last_error"]
        logged = {e["decision_id"] for e in lines_of(log)}  # also: no torn line
        assert set(answered) <= logged, f"{len(set(answered) - logged)} answered decisions are not in the log"
        if disk.mounted:
            disk.free(log)
            response = httpx.post(server.url + "/v1/decide", content=BODY, headers=HEADERS)
            assert response.status_code == 200
            assert httpx.get(server.url + "/readyz").json()["ready"] is True
            assert response.json()["decision_id"] in {e["decision_id"] for e in lines_of(log)}
    finally:
        server.stop()
        disk.close()


@pytest.mark.slow
def test_disk_full_in_best_effort_mode_answers_counts_drops_and_says_degraded(tmp_path):
    disk = TinyDisk(tmp_path)
    log = disk.dir / "decisions.jsonl"
    server = Server(tmp_path, RULES, "--poll", "0", "--decision-log", str(log), "--decision-log-mode", "best-effort",
                    preexec_fn=disk.preexec())
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            statuses = set()
            dropped = 0
            for _round in range(200):
                for _ in range(50):
                    statuses.add(client.post("/v1/decide", content=BODY, headers=HEADERS).status_code)
                time.sleep(0.1)  # the writer writes every ~50 ms
                dropped = client.get("/readyz").json()["decision_log"]["dropped"]
                if dropped:
                    break
            assert statuses == {200} and dropped > 0
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["degraded"] is True
            metrics = client.get("/metrics").text
            assert f'aftersale_decision_log_dropped_total{{reason="write failed"}} {float(dropped)}' in metrics
        lines_of(log)  # no torn line
    finally:
        server.stop()
        disk.close()


def wait_until(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- SIGKILL of a worker under load ------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_of_a_worker_under_load_loses_no_answered_decision(tmp_path):
    log = tmp_path / "decisions.jsonl"
    server = Server(tmp_path, RULES, "--poll", "0", "--workers", "2", "--decision-log", str(log))
    server.wait_ready(workers=2)
    answered: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/decide", content=BODY, headers=HEADERS)
                except httpx.TransportError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code == 200:
                    answered.append(response.json()["decision_id"])
                else:
                    failures.append(str(response.status_code))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(answered) >= 500, 60)
        victim = httpx.get(server.url + "/readyz", headers={"connection": "close"}).json()["pid"]
        os.kill(victim, signal.SIGKILL)
        killed_at = len(answered)
        # enough requests after the kill for 0.1 % to mean something (the machine may be slow)
        wait_until(lambda: len(answered) >= killed_at + 4500, 150)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    total = len(answered) + len(failures)
    assert total >= 5000, total
    assert len(failures) <= total / 1000, (len(failures), total, failures[:5])
    logged = {e["decision_id"] for e in lines_of(log)}
    assert not set(answered) - logged, f"{len(set(answered) - logged)} of {len(answered)} answered decisions unlogged"
    assert "exited with -9" in server.stderr_path.read_text()   # the supervisor restarted it

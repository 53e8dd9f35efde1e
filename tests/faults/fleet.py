"""Real push processes for the fault tests: a fake WeChat API server (`wxbot fake-wechat`) and
scheduler processes (push_process.py) started, SIGKILLed and stopped, with bounded waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fleet:
    db_url: str
    redis_url: str
    logs: Path
    offset: float = 0.0  # simulated minus real time, shared by every process through clock.txt
    fake_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def now(self) -> datetime:
        """The simulated time every process of this fleet sees."""
        return datetime.fromtimestamp(time.time() + self.offset, UTC)

    def set_time(self, at: datetime) -> None:
        """Move every process's clock to `at` (they reread the file within 50 ms); it runs on from there."""
        self.offset = at.timestamp() - time.time()
        tmp = self.logs / "clock.tmp"
        tmp.write_text(repr(self.offset))
        tmp.replace(self.logs / "clock.txt")  # atomic: a reader never sees half a number

    def start_fake(self) -> None:
        port = free_port()
        self.fake_url = f"http://127.0.0.1:{port}"
        self._spawn("fake", [sys.executable, "-m", "bot.cli", "fake-wechat", "--port", str(port)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.fake_url}/_fake/calls", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the fake WeChat API did not come up in 20 s")

    def start_scheduler(self, name: str, **options: float) -> str:
        """Start one push process; returns its scheduler instance id (the leader key's value)."""
        argv = [sys.executable, "-m", "tests.faults.push_process", "--db", self.db_url, "--redis", self.redis_url,
                "--fake", self.fake_url, "--clock", str(self.logs / "clock.txt")]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", repr(value)]
        self._spawn(name, argv)
        out = self.logs / f"{name}.out"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = out.read_text().strip()
            if text:
                return text.splitlines()[0]
            assert self.procs[name].poll() is None, self.log(name)
            time.sleep(0.05)
        raise AssertionError(f"{name} did not start in 20 s")

    def kill(self, name: str) -> None:
        """SIGKILL: no cleanup, no lease released, whatever was in flight stays in flight."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.err").read_text()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _spawn(self, name: str, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (self.logs / f"{name}.out").open("wb") as out, (self.logs / f"{name}.err").open("wb") as err:
            self.procs[name] = subprocess.Popen(argv, cwd=self.logs, env=env, stdout=out, stderr=err)

    # --- the fake's side ---------------------------------------------------------------------
    def calls(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.fake_url}/_fake/calls", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def slow(self, path: str, seconds: float) -> None:
        httpx.post(f"{self.fake_url}/_fake/slow", json={"path": path, "seconds": seconds}, timeout=5).raise_for_status()


@contextmanager
def fleet(db_url: str, redis_url: str, logs: Path, simulated_start: datetime) -> Iterator[Fleet]:
    """A fake WeChat API process; every scheduler started on it sees `simulated_start` now."""
    group = Fleet(db_url, redis_url, logs)
    group.set_time(simulated_start)
    try:
        group.start_fake()
        yield group
    finally:
        group.stop_all()

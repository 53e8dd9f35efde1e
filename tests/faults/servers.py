"""Servers the fault tests own and break: a redis-server on a free port (kill -9, restart on the same port,
SIGSTOP/SIGCONT to stall it) and `wxbot serve` as a subprocess (kill -9 mid-message). Never the shared ones."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

WXBOT = Path(sys.executable).parent / "wxbot"
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: object, *, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll `check()` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(every)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway redis-server: no persistence, so a restart comes back empty, as after a crash."""

    def __init__(self, workdir: Path) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _answers("127.0.0.1", self.port), timeout=10, what="redis-server start")

    def kill(self) -> None:
        """kill -9: no goodbye to the clients, whose pooled sockets are now dead."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stall(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.kill()


class Served:
    """`wxbot serve` in its own process, on a free port, with the given environment."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> str:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log = (self.workdir / f"serve-{port}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(WXBOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._ready, timeout=30, what="wxbot serve readiness", every=0.1)
        return self.base

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, self.logs()
        try:
            return httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """kill -9: whatever it had in flight dies with it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.workdir.glob("serve-*.log")))


def serve_env(database_url: str, redis_url: str, token: str, **settings: str) -> dict[str, str]:
    """The environment of a production-like `wxbot serve` (demo mode: nothing leaves the machine)."""
    from bot.settings import new_pii_key

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "MINIPROGRAM_"))}
    env.update(
        WECHAT_TOKEN=token, WECHAT_APPSECRET="", DATABASE_URL=database_url, REDIS_URL=redis_url,
        ADMIN_TOKEN="fault-test-admin-token-0123456789", PII_KEY=new_pii_key(), LOG_LEVEL="WARNING",
    )
    env.update({k.upper(): v for k, v in settings.items()})
    return env

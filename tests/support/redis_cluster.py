"""A throwaway Redis Cluster for the tests (issue 20): three masters, `redis-server --cluster-enabled yes` on
spare ports, joined by `redis-cli --cluster create`, no persistence; its own, never the shared Redis. The
test run starts it once (tests/conftest.py, `cluster_url`), flushes it for each test and removes it at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
MASTERS = 3


def _free_ports(n: int) -> list[int]:
    """n free ports whose cluster bus ports (port + 10000) are below 65536 and free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def available() -> bool:
    return REDIS_SERVER is not None and REDIS_CLI is not None


class RedisCluster:
    def __init__(self, workdir: Path) -> None:
        assert available(), "redis-server and redis-cli are needed for a Redis Cluster"
        self.workdir = workdir
        self.ports = _free_ports(MASTERS)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The KV's URL for it: every node, so the client finds the cluster from any of them."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> None:
        assert REDIS_SERVER is not None
        assert REDIS_CLI is not None
        for port in self.ports:
            node = self.workdir / str(port)
            node.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node / "nodes.conf"), "--cluster-node-timeout", "2000",
                 "--save", "", "--appendonly", "no", "--dir", str(node)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port in self.ports:
            self._wait(lambda p=port: self._cli(p, "PING") == "PONG", f"node {port} answers")
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        for port in self.ports:
            self._wait(lambda p=port: "cluster_state:ok" in self._cli(p, "CLUSTER", "INFO"), f"node {port} sees ok")

    def flush(self) -> None:
        for port in self.ports:
            self._cli(port, "FLUSHALL")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _cli(port: int, *command: str) -> str:
        assert REDIS_CLI is not None
        done = subprocess.run([REDIS_CLI, "-p", str(port), *command], capture_output=True, text=True, timeout=10,
                              check=False)
        return done.stdout.strip()

    @staticmethod
    def _wait(check: object, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"Redis Cluster: {what} did not happen within {timeout} s"
            time.sleep(0.1)

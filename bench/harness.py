"""What every benchmark shares: a free port, a server started and always stopped, process CPU, percentiles,
the machine line and a table printer. No benchmark logic here."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


class BenchError(RuntimeError):
    """The benchmark cannot go on (a server did not start, too many failed requests, ...)."""



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def migrate(env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [str(BIN / "wxbot"), "migrate"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"wxbot migrate failed:\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], cwd: Path, port: int, ready: str) -> Iterator[int]:
    """Start a server, wait until `ready` answers 200, yield its pid; always stop it."""
    log_path = cwd / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while http_get_status(port, ready) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BenchError(f"{' '.join(argv[:3])} did not become ready:\n{tail}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def http_get_status(port: int, path: str) -> int | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
        return int(head.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def workers(pid: int) -> list[int]:
    """The processes that serve: the server itself, or with --workers N its worker children."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(stat.parent.name))
    return children or [pid]


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) in MB from /proc/<pid>/status, of the largest serving process."""
    found: dict[str, float] = {"VmRSS": 0.0, "VmHWM": 0.0}
    for serving in workers(pid):
        for line in Path(f"/proc/{serving}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in found:
                found[name] = max(found[name], int(value.split()[0]) / 1024)
    return found


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the serving processes, from /proc/<pid>/stat (fields 14 and 15)."""
    total = 0
    for serving in {pid, *workers(pid)}:
        stat = Path(f"/proc/{serving}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    python = ".".join(map(str, sys.version_info[:3]))
    return f"wxbot {commit}; {os.cpu_count()} x {model}; Python {python}"


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def print_markdown(head: list[str], rows: list[list[Any]]) -> None:
    """A Markdown table, ready to paste into docs/benchmarks.md."""
    print("\n| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")

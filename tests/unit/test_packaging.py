"""What the distribution ships: the product packages, never the development tools (issue 13)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def shipped_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return set(find_packages(where=str(ROOT), include=include))


def test_the_wheel_carries_the_product_and_not_the_devtools() -> None:
    packages = shipped_packages()
    assert {"bot", "bot.inbound", "bot.wechat", "bot.api", "handlers", "flows", "storage", "scheduler"} <= packages
    assert not {p for p in packages if p.split(".")[0] in {"devtools", "tests", "bench"}}


def copied_sources() -> set[str]:
    """Every source of every COPY in the Dockerfile (flags and the destination left out)."""
    sources: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            sources.update(w.rstrip("/") for w in words[:-1])
    return sources


def test_the_image_copies_no_development_tools() -> None:
    copied = copied_sources()
    assert {"bot", "handlers", "flows", "storage", "scheduler", "migrations", "pyproject.toml"} <= copied
    assert not {"devtools", "tests", "bench", "."} & copied

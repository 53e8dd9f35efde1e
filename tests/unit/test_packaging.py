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


def test_the_image_copies_no_development_tools() -> None:
    copied = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    assert "bot" in copied
    assert not {"devtools", "tests", "bench", "."} & set(copied)

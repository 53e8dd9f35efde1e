"""Every DomainError, wherever it is defined, has a member-facing text in handlers/texts.ERROR_TEXTS, and the
table holds nothing else: a new error without a text fails here, not as a silent generic apology."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from handlers import texts
from storage.errors import DomainError

PACKAGES = ("storage", "handlers", "flows", "scheduler", "bot")


def _import_everything() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(module.name)


def _domain_errors() -> list[type[DomainError]]:
    _import_everything()
    found: list[type[DomainError]] = [DomainError]
    for cls in found:  # grows while walked: subclasses of subclasses too
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return found


ERRORS = _domain_errors()


def test_the_walk_finds_the_errors_of_every_area() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {"InsufficientPointsError", "OutOfStockError", "CampaignFullError", "PhoneTakenError",
            "RefundTooLargeError", "CodeUsedError"} <= names


@pytest.mark.parametrize("error", ERRORS, ids=lambda cls: cls.__name__)
def test_every_domain_error_has_a_text(error: type[DomainError]) -> None:
    assert error.text_key in texts.ERROR_TEXTS, f"{error.__name__}.text_key {error.text_key!r} has no text"
    assert texts.domain_text(error()) == texts.ERROR_TEXTS[error.text_key]


def test_the_table_holds_only_error_texts() -> None:
    assert set(texts.ERROR_TEXTS) == {cls.text_key for cls in ERRORS}


def test_an_error_text_is_filled_with_the_errors_details() -> None:
    exc = DomainError("x", needed=500, balance=120, missing=380)
    exc.text_key = "insufficient_points"
    assert texts.domain_text(exc) == "积分不足：需要 500 积分，当前 120，还差 380 积分。"


def test_an_unknown_key_falls_back_to_the_generic_text() -> None:
    assert texts.text_for("no_such_key") == texts.error_generic

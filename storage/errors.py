"""Domain errors: each carries the texts key a handler turns into a friendly reply; no text lives here."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the member or client should hear about, never a crash."""

    text_key = "error_generic"

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.__class__.__name__)
        self.details = details


class NotFoundError(DomainError):
    text_key = "error_not_found"


class ConflictError(DomainError):
    text_key = "error_conflict"


class InvalidFieldError(DomainError):
    """Input refused before anything changed: `field` names what was wrong and `problem` says how (an API
    answers 422 naming both, a console form shows the problem beside the field)."""

    text_key = "error_invalid"

    def __init__(self, field: str = "", problem: str = "", **details: Any) -> None:
        super().__init__(f"{field}: {problem}", **details)
        self.field = field
        self.problem = problem

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

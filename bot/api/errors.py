"""JSON errors for the HTTP APIs: {"error": code, "message": text} with a precise status."""

from __future__ import annotations

from fastapi import HTTPException


class ApiError(HTTPException):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.code = code


ERROR_SCHEMA = {
    "description": "An error",
    "content": {"application/json": {"example": {"error": "not_member", "message": "您还不是会员哦。"}}},
}

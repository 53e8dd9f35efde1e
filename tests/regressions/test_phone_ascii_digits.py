"""A phone written in another script's digits must not pass as a second, different number."""

from __future__ import annotations

from storage.members import normalise_phone


def test_only_ascii_digits_make_a_phone() -> None:
    assert normalise_phone("13" + "\u0667" * 9) is None  # Arabic-Indic sevens
    assert normalise_phone("１３８００１３８０００") == "13800138000"  # full-width folds to ASCII
    assert normalise_phone("+86 138-0013-8000") == "13800138000"

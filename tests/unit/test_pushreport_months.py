"""The push report's month arithmetic (storage/pushreport.py): ranges across a year's end."""

from __future__ import annotations

from datetime import date

from storage.pushreport import months, months_back, next_month


def test_months_cross_the_year_end() -> None:
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert months(date(2026, 11, 30), date(2027, 2, 3)) == [
        date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]
    assert months(date(2026, 12, 1), date(2026, 11, 1)) == []


def test_months_back_counts_the_last_month_in() -> None:
    assert months_back(date(2026, 11, 1), 6) == date(2026, 6, 1)
    assert months_back(date(2026, 3, 1), 6) == date(2025, 10, 1)
    assert months_back(date(2026, 1, 1), 1) == date(2026, 1, 1)
    assert len(months(months_back(date(2026, 11, 1), 24), date(2026, 11, 1))) == 24

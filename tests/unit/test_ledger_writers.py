"""Only storage/ledger.py builds ledger rows: an AST scan of the product packages finds every module that
constructs a LedgerEntry, PointsLot or LotMovement, or inserts into their tables (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from storage.models import LedgerEntry, LotMovement, PointsLot

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "handlers", "flows", "storage", "scheduler", "migrations")
THE_WRITER = "storage/ledger.py"
MODELS = {model.__name__ for model in (LedgerEntry, PointsLot, LotMovement)}
TABLES = {str(model.__tablename__) for model in (LedgerEntry, PointsLot, LotMovement)}
_RAW_INSERT = re.compile(r"\binsert\s+into\s+\"?(" + "|".join(sorted(TABLES)) + r")\b", re.IGNORECASE)


def _terminal(node: ast.expr) -> str | None:
    """`x` of `x`, `a.b.x` and `f(...)`'s callee, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _terminal(node.func)
    return None


def _is_table(node: ast.expr, aliases: set[str]) -> bool:
    """A ledger model, its `__table__` or `table_of(...)`, its table by name, or a name bound to one of those."""
    if isinstance(node, ast.Name):
        return node.id in MODELS or node.id in aliases
    if isinstance(node, ast.Attribute) and node.attr == "__table__":
        return _is_table(node.value, aliases)
    if isinstance(node, ast.Attribute):
        return node.attr in MODELS
    if isinstance(node, ast.Constant):
        return node.value in TABLES
    if isinstance(node, ast.Call) and _terminal(node.func) in {"table", "table_of"} and node.args:
        return _is_table(node.args[0], aliases)  # sqlalchemy's table("..."), storage.rows.table_of(Model)
    return False


def _aliases(tree: ast.AST) -> set[str]:
    """Names bound to a ledger table: `_ENTRIES = LedgerEntry.__table__`, tuple assignments too."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            for name, value in pairs:
                if isinstance(name, ast.Name) and _is_table(value, found):
                    found.add(name.id)
    return found


def ledger_writes(source: str) -> list[str]:
    """Where the source builds a ledger row: 'line N: what', in order."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _terminal(node.func)
            if name in MODELS:
                found.append(f"line {node.lineno}: constructs {name}")
            elif name and "insert" in name.lower():
                target = node.func.value if isinstance(node.func, ast.Attribute) else None
                if any(_is_table(arg, aliases) for arg in [*node.args, *([target] if target else [])]):
                    found.append(f"line {node.lineno}: {name} into a ledger table")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _RAW_INSERT.search(node.value):
            found.append(f"line {node.lineno}: INSERT INTO a ledger table in SQL text")
    return sorted(found, key=lambda where: int(where.split()[1].rstrip(":")))


def _product_files() -> list[Path]:
    return sorted(path for package in PRODUCT for path in (ROOT / package).rglob("*.py"))


def test_no_module_but_the_ledger_builds_ledger_rows() -> None:
    offenders = {
        str(path.relative_to(ROOT)): writes
        for path in _product_files() if str(path.relative_to(ROOT)) != THE_WRITER
        if (writes := ledger_writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"ledger rows are built only in {THE_WRITER}; move these writes there: {offenders}"


def test_the_scan_sees_the_ledgers_own_writes() -> None:
    """Not vacuous: the module that does write is seen writing (entries, lots and lot movements)."""
    writes = " ".join(ledger_writes((ROOT / THE_WRITER).read_text(encoding="utf-8")))
    assert "into a ledger table" in writes
    assert "constructs LotMovement" in writes


@pytest.mark.parametrize("source", [
    "session.add(LedgerEntry(member_id=1, delta=5))",
    "row = models.PointsLot(member_id=1)",
    "await session.execute(insert(LedgerEntry).values(delta=1))",
    "_E = LedgerEntry.__table__\nstmt = pg_insert(_E)",
    "_M, _L = Member.__table__, PointsLot.__table__\nstmt = insert(_L)",
    "stmt = LotMovement.__table__.insert()",
    "_E = table_of(LedgerEntry)\nstmt = insert(_E).values(delta=1)",
    "op.bulk_insert(table('ledger_entry'), [])",
    "session.bulk_insert_mappings(LedgerEntry, rows)",
    "await conn.execute(text('INSERT INTO points_lot (member_id) VALUES (1)'))",
    "sql = 'insert into \"lot_movement\" values (1)'",
], ids=lambda source: source.split("\n")[-1][:40])
def test_the_scan_catches_each_way_of_writing_a_row(source: str) -> None:
    assert ledger_writes(source), source


@pytest.mark.parametrize("source", [
    "select(LedgerEntry).where(LedgerEntry.idempotency_key == key)",
    "insert(Member).values(openid='o')",
    "'SELECT SUM(e.delta) FROM ledger_entry e'",
    "func.sum(PointsLot.remaining)",
], ids=lambda source: source[:40])
def test_reading_the_ledger_is_not_writing_it(source: str) -> None:
    assert ledger_writes(source) == [], source

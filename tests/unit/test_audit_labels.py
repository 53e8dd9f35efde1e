"""Every action the code writes to the audit trail has a label an operator reads on the audit page, so a
new audited action cannot ship showing its English key alone."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.console import texts

ROOT = Path(__file__).resolve().parents[2]


def recorded_actions() -> tuple[set[str], set[str]]:
    """The literal actions of every `audit.record(...)` / `record(...)` call in the product, and the fixed
    prefixes of the formatted ones (f"store.{action}")."""
    literal: set[str] = set()
    prefixes: set[str] = set()
    packages = ("bot", "storage", "flows", "handlers", "scheduler")
    for path in [p for part in packages for p in (ROOT / part).rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {node.targets[0].id: node.value.value for node in ast.walk(tree)
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
        for call in ast.walk(tree):
            func = getattr(call, "func", None)
            if not isinstance(call, ast.Call) or getattr(func, "attr", getattr(func, "id", None)) != "record":
                continue
            given = [k.value for k in call.keywords if k.arg == "action"]
            if len(call.args) < 3 and not given:
                continue
            action = call.args[2] if len(call.args) >= 3 else given[0]
            for node in ast.walk(action):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    literal.add(node.value)
                elif isinstance(node, ast.Name) and node.id in names:
                    literal.add(names[node.id])
            if isinstance(action, ast.JoinedStr) and isinstance(action.values[0], ast.Constant):
                prefixes.add(str(action.values[0].value))
    return {a for a in literal if a and not any(a == p for p in prefixes)}, prefixes


def test_every_audited_action_has_a_chinese_label() -> None:
    literal, prefixes = recorded_actions()
    assert {"points.adjust", "coupon.use", "staff.role", "ticket.answer"} <= literal  # the walk finds them
    assert {"store.", "export."} <= prefixes  # and the formatted ones
    assert sorted(literal - texts.AUDIT_ACTIONS.keys()) == []
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in texts.AUDIT_ACTIONS), prefix

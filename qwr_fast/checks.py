"""Range checks of config fields: the first field out of range raises one ValueError that names
it (as its command-line flag, or as the field), what it must be, and the value it got."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["check_fields"]

RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    ">= 1": (lambda v: v >= 1, ">= 1"),
    ">= 0": (lambda v: v >= 0, ">= 0"),
    "> 0": (lambda v: v > 0, "> 0"),
    "[0, 1]": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "[0, 1)": (lambda v: 0 <= v < 1, "in [0, 1)"),
}


def check_fields(obj: Any, names: str | Iterable[str], rule: str, *, flags: bool = True) -> None:
    """Check ``getattr(obj, name)`` for each of ``names`` (a list, or one space-separated
    string) against ``rule`` (``">= 1"``, ``">= 0"``, ``"> 0"``, ``"[0, 1]"``, ``"[0, 1)"``;
    NaN fails every rule). ``flags``: name the field as ``--its-flag`` (entry-point configs),
    else by its name (library configs)."""
    ok, expected = RULES[rule]
    for name in names.split() if isinstance(names, str) else names:
        value = getattr(obj, name)
        if not ok(value):
            label = f"--{name.replace('_', '-')}" if flags else name
            raise ValueError(f"{label} must be {expected}, got {value}")

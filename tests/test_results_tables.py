"""The results tables that have a generator are what it prints from the committed records
(issue 20, part 3, for these tables so far): every table row that ``python docs/<script>.py``
prints stands verbatim in docs/results.md."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GENERATORS = ["docs/scale_table.py", "docs/pft_table.py", "docs/compile_table.py"]


@pytest.mark.parametrize("script", GENERATORS)
def test_committed_tables_equal_what_their_records_regenerate(script):
    out = subprocess.run(
        [sys.executable, script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert len(rows) >= 4, f"{script} printed no table"
    results = set((ROOT / "docs" / "results.md").read_text().splitlines())
    missing = [row for row in rows if row not in results]
    assert not missing, f"rows {script} prints that docs/results.md lacks: {missing}"

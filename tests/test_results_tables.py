"""The results tables that have a generator are what it prints from the committed records
(issue 20, part 3, for these tables so far): every table row that ``python docs/<script>.py``
prints stands in docs/results.md."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHANCE = "docs/runs/search_chance/breakout_"
GENERATORS = {  # the command results.md names for each table
    "scale-out": ["docs/scale_table.py"],
    "policy fine-tuning on BitFlip": ["docs/pft_table.py"],
    "compile": ["docs/compile_table.py"],
    "hanabi q-ft": ["docs/hanabi_qft_table.py"],
    "search with fresh chance": [
        "docs/search_table.py",
        *(f"{CHANCE}{mode}_s{seed}.csv" for mode in ("oracle", "fresh") for seed in range(3)),
    ],
}


@pytest.mark.parametrize("argv", GENERATORS.values(), ids=GENERATORS.keys())
def test_committed_tables_equal_what_their_records_regenerate(argv):
    """Row by row, in any order; results.md may set a cell in bold (``**``)."""
    out = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert len(rows) >= 4, f"{argv[0]} printed no table"
    text = (ROOT / "docs" / "results.md").read_text().replace("**", "")
    results = set(text.splitlines())
    missing = [row for row in rows if row not in results]
    assert not missing, f"rows {argv[0]} prints that docs/results.md lacks: {missing}"

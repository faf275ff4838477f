"""Regenerate every results table that has a committed record, and check docs/results.md.

    python docs/results_tables.py            print every table, each under its title
    python docs/results_tables.py --check    exit 1 naming every row that docs/results.md lacks

Each table is printed by its own generator (``python docs/<script>.py RECORDS``) from the small
records under ``docs/runs/`` (config.json, eval.csv, CSVs; never checkpoints). ``--check`` is
what the suite runs (``tests/test_results_tables.py``): every table row a generator prints must
stand in docs/results.md (row order free; results.md may set a cell in bold with ``**``). A
figure of docs/results.md that no generator prints says, where it stands, that its record was
not kept.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHANCE = "docs/runs/search_chance/breakout_"
GENERATORS = {  # title -> the command results.md names for the table
    "scale-out": ["docs/scale_table.py"],
    "policy fine-tuning on BitFlip": ["docs/pft_table.py"],
    "compile": ["docs/compile_table.py"],
    "hanabi q-ft": ["docs/hanabi_qft_table.py"],
    "search with fresh chance": [
        "docs/search_table.py",
        *(f"{CHANCE}{mode}_s{seed}.csv" for mode in ("oracle", "fresh") for seed in range(3)),
    ],
    "minatar": ["docs/minatar_table.py"],
}


def table_rows(title: str) -> list[str]:
    """The Markdown table rows the generator of ``title`` prints."""
    out = subprocess.run(
        [sys.executable, *GENERATORS[title]], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.startswith("|")]


def missing_rows(title: str, results: str | None = None) -> list[str]:
    """The rows of ``title``'s table that docs/results.md (bold ignored) does not hold."""
    text = (ROOT / "docs" / "results.md").read_text() if results is None else results
    lines = set(text.replace("**", "").splitlines())
    return [row for row in table_rows(title) if row not in lines]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        bad = {title: rows for title in GENERATORS if (rows := missing_rows(title))}
        for title, rows in bad.items():
            print(f"{title} ({' '.join(GENERATORS[title])}): docs/results.md lacks")
            print("\n".join(f"  {row}" for row in rows))
        print("all tables match their records" if not bad else "", file=sys.stderr)
        return 1 if bad else 0
    if argv:
        print(f"usage: python {sys.argv[0]} [--check]", file=sys.stderr)
        return 2
    for title in GENERATORS:
        print(f"## {title}: python {' '.join(GENERATORS[title])}\n")
        print("\n".join(table_rows(title)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

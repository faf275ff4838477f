"""Every results table that has a generator is what it prints from the committed records
(issue 20, part 3): ``python docs/results_tables.py --check`` holds, table by table, and the
README's result bullets are what ``python docs/readme_results.py`` prints from the records."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("results_tables", ROOT / "docs/results_tables.py")
results_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_tables)


@pytest.mark.parametrize("title", results_tables.GENERATORS)
def test_committed_tables_equal_what_their_records_regenerate(title):
    """Row by row, in any order; results.md may set a cell in bold (``**``)."""
    rows = results_tables.table_rows(title)
    assert len(rows) >= 3, f"{title} printed no table"  # header, separator, one row at least
    missing = results_tables.missing_rows(title)
    assert not missing, f"rows the {title} generator prints that docs/results.md lacks: {missing}"


def test_the_check_fails_on_a_changed_figure():
    """The check can fail: one changed cell of a committed table is a missing row."""
    rows = results_tables.table_rows("minatar")
    text = (ROOT / "docs" / "results.md").read_text().replace("**", "")
    assert results_tables.missing_rows("minatar", text) == []
    changed = text.replace(rows[2], rows[2].replace(" |", "0 |", 1))
    assert results_tables.missing_rows("minatar", changed) == [rows[2]]


def test_readme_result_bullets_are_regenerated_from_the_records():
    readme = (ROOT / "README.md").read_text()
    bullets = results_tables.readme_bullets()
    assert bullets.count("\n- ") == 4, bullets  # BitFlip, MuJoCo, offline, MinAtar
    assert results_tables.readme_block(readme) == bullets, (
        "run docs/results_tables.py --write-readme"
    )

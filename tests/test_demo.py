"""``make demo``: the committed record regenerates the README's figure and summary lines, and
the demo itself runs end to end (at a 1000-step budget)."""

from __future__ import annotations

from pathlib import Path

from qwr_fast.cli.demo import main, plot_comparison, summary

ROOT = Path(__file__).resolve().parents[1]


def test_readme_summary_is_regenerated_from_the_record(tmp_path, capsys):
    record = ROOT / "docs" / "runs" / "demo"
    readme = (ROOT / "README.md").read_text()
    lines = summary(str(record))
    assert len(lines) == 2 and "QWR-LSE" in lines[0] and "AWR" in lines[1]
    for line in lines:
        assert line in readme, f"README does not quote the record's summary: {line}"
    # the committed figure, docs/figures/demo_comparison.png, is this one
    assert Path(plot_comparison(str(record), str(tmp_path / "c.png"))).stat().st_size > 0


def test_demo_runs_both_algorithms(tmp_path, capsys):
    assert main(["--run-root", str(tmp_path), "--total-steps", "1000", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "QWR-LSE  on BitFlip-32 after 1000 env steps" in out and "AWR " in out
    assert (tmp_path / "comparison.png").stat().st_size > 0
    for algo in ("qwr-lse", "awr"):
        assert (tmp_path / algo / "eval.csv").exists()


def test_demo_errors_are_one_line(tmp_path, capsys):
    assert main(["--plot-only", "--run-root", str(tmp_path)]) == 2
    assert main(["--total-steps", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[0] and "--total-steps" in err[1]

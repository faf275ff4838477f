"""Regenerate every results table that has a committed record, and check docs/results.md.

    python docs/results_tables.py                 print every table, each under its title
    python docs/results_tables.py --check         exit 1 naming every row that docs/results.md
                                                  lacks, or if the README's result bullets differ
    python docs/results_tables.py --write-readme  regenerate the README's result bullets

Each table is printed by its own generator (``python docs/<script>.py RECORDS``) from the small
records under ``docs/runs/`` (config.json, eval.csv, CSVs; never checkpoints). ``--check`` is
what the suite runs (``tests/test_results_tables.py``): every table row a generator prints must
stand in docs/results.md (row order free; results.md may set a cell in bold with ``**``). A
figure of docs/results.md that no generator prints says, where it stands, that its record was
not kept. The README's QWR result bullets are what ``python docs/readme_results.py`` prints from
the same records, between the two ``results:`` markers of README.md.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHANCE = "docs/runs/search_chance/breakout_"
PACMAN = "docs/runs/mspacman/"
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
    **{
        f"ms. pacman, {moves} moves, {kind}": [
            "docs/search_table.py",
            *(f"{PACMAN}{prefix}{planner}_{budget}_m{moves}.csv" for planner in planners),
        ]
        for moves in (100, 250)
        for kind, prefix, budget, planners in (
            ("equal env steps", "search_", "b128", ("blueprint", "mcts", "sparta", "policy-ft")),
            ("equal wall time", "wall_", "s0.2", ("mcts", "sparta", "policy-ft")),
        )
    },
    **{
        f"ms. pacman, {moves} moves, continued ppo": [
            "docs/search_table.py",
            f"{PACMAN}search_blueprint_b128_m{moves}.csv",
            f"{PACMAN}search_continued_m{moves}.csv",
        ]
        for moves in (100, 250)
    },
    **{
        f"ms. pacman deterministic, 250 moves, {kind}": [
            "docs/search_table.py",
            *(f"{PACMAN}{prefix}{planner}_{budget}_m250_p0.csv" for planner in planners),
        ]
        for kind, prefix, budget, planners in (
            ("equal env steps", "search_", "b128", ("blueprint", "mcts", "sparta", "policy-ft")),
            ("equal wall time", "wall_", "s0.2", ("mcts", "sparta", "policy-ft")),
        )
    },
    "ms. pacman deterministic, 250 moves, continued ppo": [
        "docs/search_table.py",
        f"{PACMAN}search_blueprint_b128_m250_p0.csv",
        f"{PACMAN}search_continued_m250_p0.csv",
    ],
    "ms. pacman, 250 moves, policy-ft at the paper's horizon": [
        "docs/search_table.py",
        f"{PACMAN}search_blueprint_b128_m250.csv",
        f"{PACMAN}search_policy-ft_b128_m250.csv",
        f"{PACMAN}search_policy-ft_b128_m250_h30.csv",
    ],
    "mujoco": ["docs/seeds_table.py", "docs/runs/mujoco_100000", "100000"],
    "mujoco, reference parameterisation": [
        "docs/seeds_table.py",
        "docs/runs/mujoco_ref_100000",
        "100000",
    ],
    "mujoco, paper-time backup": ["docs/seeds_table.py", "docs/runs/mujoco_lse1_100000", "100000"],
    "mujoco, update ratio": ["docs/seeds_table.py", "docs/runs/mujoco_upd3_100000", "100000"],
    "aql bitflip 8 and 16": ["docs/aql_table.py", "docs/runs/aql_bitflip_3000_v2"],
    "aql bitflip 32": ["docs/aql_table.py", "docs/runs/aql_bitflip_20000"],
    "bitflip-32": ["docs/seeds_table.py", "docs/runs/bitflip32_20000_g05", "20000"],
    "offline halfcheetah": ["docs/seeds_table.py", "docs/runs/offline_hc", "10000"],
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


README_BEGIN = "<!-- results:begin: python docs/results_tables.py --write-readme -->"
README_END = "<!-- results:end -->"


def readme_bullets() -> str:
    """What ``python docs/readme_results.py`` prints from the records."""
    return subprocess.run(
        [sys.executable, "docs/readme_results.py"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip


def readme_block(readme: str) -> str:
    """The text between the README's two ``results:`` markers."""
    begin, end = readme.index(README_BEGIN) + len(README_BEGIN) + 1, readme.index(README_END)
    return readme[begin:end]


def write_readme() -> None:
    """Put the regenerated bullets between the markers (an atomic replace of README.md)."""
    path = ROOT / "README.md"
    readme = path.read_text()
    old = readme_block(readme)
    start = readme.index(README_BEGIN) + len(README_BEGIN) + 1
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(readme[:start] + readme_bullets() + readme[start + len(old) :])
    tmp.replace(path)


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        bad = {title: rows for title in GENERATORS if (rows := missing_rows(title))}
        for title, rows in bad.items():
            print(f"{title} ({' '.join(GENERATORS[title])}): docs/results.md lacks")
            print("\n".join(f"  {row}" for row in rows))
        readme_ok = readme_block((ROOT / "README.md").read_text()) == readme_bullets()
        if not readme_ok:
            print("README.md: the result bullets differ from python docs/readme_results.py")
        ok = not bad and readme_ok
        print("every table and the README's bullets match their records" if ok else "")
        return 0 if ok else 1
    if argv == ["--write-readme"]:
        write_readme()
        return 0
    if argv:
        print(f"usage: python {sys.argv[0]} [--check | --write-readme]", file=sys.stderr)
        return 2
    for title in GENERATORS:
        print(f"## {title}: python {' '.join(GENERATORS[title])}\n")
        print("\n".join(table_rows(title)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

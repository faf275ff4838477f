"""The run directory, the one place every trainer's bookkeeping lives: its guard and its files
(``config.json``, ``train.csv``, ``eval.csv``, TensorBoard, ``curve.png``), the progress bar,
and the evaluation / checkpoint schedule. What a loop does in an epoch stays in its trainer."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import tempfile

import numpy as np

from qwr_fast.checkpoint import checkpoint_paths

__all__ = [
    "LATEST",
    "Every",
    "RunLog",
    "check_run_dir",
    "open_csv",
    "plot_eval_curve",
    "run_checkpoints",
]

LATEST = "checkpoint.pt"  # the fixed-name checkpoint of ppo-train and dqn-train


def run_checkpoints(run_dir: str) -> list[str]:
    """Every checkpoint file of ``run_dir``: ``ckpt_<step>.pt`` and ``checkpoint.pt``."""
    latest = os.path.join(run_dir, LATEST)
    return checkpoint_paths(run_dir) + ([latest] if os.path.exists(latest) else [])


def check_run_dir(cfg) -> None:
    """A fresh run (``cfg.resume`` unset) must not start in a directory holding another run's
    checkpoints unless ``cfg.overwrite``: a later ``--resume`` would pick up the stale ones."""
    if cfg.resume is None and not cfg.overwrite and run_checkpoints(cfg.run_dir):
        raise ValueError(
            f"--run-dir {cfg.run_dir} holds the checkpoints of another run: continue it "
            f"with --resume {cfg.run_dir}, or pass --overwrite to start afresh there"
        )


class Every:
    """Fires at each multiple of ``period`` steps after ``step`` (and at the final step)."""

    def __init__(self, period: int, step: int) -> None:
        self.period = period
        self.next = (step // period + 1) * period

    def due(self, step: int, final: bool) -> bool:
        if step < self.next and not final:
            return False
        self.next = (step // self.period + 1) * self.period
        return True


class RunLog:
    """Context manager over one ``train()`` call: on entry it writes ``config.json``
    (atomically), deletes the checkpoints of an overwritten run (a fresh start), opens the CSV
    logs (a resumed run keeps their rows up to its checkpoint), TensorBoard (when
    ``cfg.tensorboard``) and the progress bar; on exit it closes them.

    ``start_step`` is the trainer's step on entry; the run is a resumed one when
    ``cfg.resume`` is set. ``skip`` names the train-row keys that are counters, not TensorBoard
    scalars.
    """

    def __init__(
        self,
        cfg,
        start_step: int,
        train_columns: list[str],
        eval_columns: list[str],
        *,
        skip: tuple[str, ...] = ("step", "epoch"),
    ) -> None:
        self.cfg, self.start_step, self.resumed = cfg, start_step, cfg.resume is not None
        self.train_columns, self.eval_columns, self.skip = train_columns, eval_columns, skip
        self.evals = Every(cfg.eval_every, start_step)
        self.checkpoints = Every(cfg.checkpoint_every, start_step)

    def __enter__(self) -> RunLog:
        from tqdm import tqdm

        cfg = self.cfg
        os.makedirs(cfg.run_dir, exist_ok=True)
        if not self.resumed:
            for path in run_checkpoints(cfg.run_dir):
                os.unlink(path)
        _write_json(os.path.join(cfg.run_dir, "config.json"), dataclasses.asdict(cfg))
        resume_step = self.start_step if self.resumed else None
        self.eval_f, self.eval_w = open_csv(cfg.run_dir, "eval.csv", self.eval_columns, resume_step)
        self.train_f, self.train_w = open_csv(
            cfg.run_dir, "train.csv", self.train_columns, resume_step
        )
        self.tb = None
        if getattr(cfg, "tensorboard", False):
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(cfg.run_dir, "tb"), purge_step=resume_step)
        self.bar = tqdm(
            total=cfg.total_steps,
            initial=self.start_step,
            disable=not cfg.progress,
            unit="step",
            dynamic_ncols=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
        self.eval_f.close()
        self.train_f.close()
        if self.tb is not None:
            self.tb.close()

    def train_row(self, row: dict) -> None:
        """Append ``row`` to ``train.csv`` (and its scalars to TensorBoard as ``train/<key>``)."""
        self.train_w.writerow(row)
        self.train_f.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k not in self.skip:
                    self.tb.add_scalar(f"train/{k}", v, row["step"])

    def eval_row(self, row: dict, scalars: dict[str, float]) -> None:
        """Append ``row`` to ``eval.csv``; ``scalars`` go to TensorBoard as ``eval/<key>``."""
        self.eval_w.writerow(row)
        self.eval_f.flush()
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"eval/{k}", v, row["step"])

    def progress(
        self, steps: int, steps_per_s: float | None = None, last_eval: float | None = None
    ) -> None:
        """Advance the bar by ``steps``; with ``steps_per_s``, also refresh its figures."""
        self.bar.update(steps)
        if steps_per_s is not None:
            self.bar.set_postfix(sps=f"{steps_per_s:.0f}", eval=f"{last_eval:.2f}")


def _write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder + rename)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def open_csv(run_dir: str, name: str, columns: list[str], resume_step: int | None):
    """Open ``run_dir/name`` for writing rows of ``columns``; on a resume, the rows with
    ``step <= resume_step`` are kept (those after the checkpoint are dropped, so a resumed run's
    file equals an uninterrupted one's). Returns ``(file, csv.DictWriter)``."""
    path = os.path.join(run_dir, name)
    rows = []
    if resume_step is not None and os.path.exists(path):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
    f = open(path, "w", newline="")  # noqa: SIM115 (kept open for the run)
    w = csv.DictWriter(f, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
    f.flush()
    return f, w


def plot_eval_curve(run_dir: str, series: list[tuple[str, str]], *, title: str = "") -> str | None:
    """Write ``curve.png`` (eval return vs env steps) from ``eval.csv``: one line per
    ``(column, label)`` of ``series`` with a ``+- std`` band when the ``*_std`` column exists
    (``return_mean`` -> ``return_std``); all-NaN columns are skipped. Returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(run_dir, "eval.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    step = np.array([float(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in series:
        mean = np.array([float(r[key]) for r in rows])
        if np.isnan(mean).all():
            continue
        ax.plot(step, mean, label=label)
        std_key = key.replace("mean", "std")
        if std_key != key and std_key in rows[0]:
            std = np.array([float(r[std_key]) for r in rows])
            ax.fill_between(step, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    out = os.path.join(run_dir, "curve.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

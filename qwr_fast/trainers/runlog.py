"""The run directory, the one place every trainer's bookkeeping lives: its lock, its guard and
its files (``config.json``, ``train.csv``, ``eval.csv``, TensorBoard, ``curve.png``), the progress
bar, the evaluation / checkpoint schedule (env steps and wall time) and the stop on SIGINT /
SIGTERM. What a loop does in an epoch stays in its trainer."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import shutil
import signal
import threading
import time

import numpy as np

from qwr_fast.checkpoint import atomic_write, checkpoint_paths
from qwr_fast.distributed import SHARDS

try:
    import fcntl
except ImportError:  # no flock (Windows): runs are not locked
    fcntl = None

__all__ = [
    "LATEST",
    "LOCK",
    "RUN_FILES",
    "Every",
    "FileLock",
    "RunDirBusy",
    "RunDirError",
    "RunInterrupted",
    "RunLog",
    "check_run_dir",
    "hold_run_dir",
    "open_csv",
    "plot_eval_curve",
    "run_checkpoints",
    "run_files",
]

LATEST = "checkpoint.pt"  # the fixed-name checkpoint of ppo-train and dqn-train
LOCK = ".lock"  # RUN_DIR/.lock: flock-ed by the process running there, holds its pid
_clock = time.monotonic  # the wall clock of checkpoint_minutes (a test may stand in for it)
RUN_FILES = ("config.json", "train.csv", "eval.csv", "curve.png", "tb")
"""The files (besides checkpoints) that make a directory another run's."""


class RunDirBusy(RuntimeError):
    """The run directory (or qwr-collect's output) is locked by another live process."""


class RunDirError(ValueError):
    """The run directory cannot be used: a file stands there, or it cannot be created or
    written (one line naming it and the reason)."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT / SIGTERM. ``path``: the checkpoint written at the stop (None
    when a second signal cut the run short before it was written); ``run_dir``: where to
    ``--resume``. A KeyboardInterrupt, so that ``except Exception`` does not swallow it."""

    def __init__(self, signum: int, step: int, path: str | None, run_dir: str) -> None:
        self.signum, self.step, self.path, self.run_dir = signum, step, path, run_dir
        super().__init__(self.describe())

    @property
    def exit_code(self) -> int:
        """The shell's code for death by this signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + self.signum

    def describe(self, prog: str | None = None) -> str:
        """One line: the signal, the step, the checkpoint and how to continue."""
        name = signal.Signals(self.signum).name
        again = f"{prog} --resume {self.run_dir}" if prog else f"--resume {self.run_dir}"
        if self.path is None:
            return (
                f"stopped by a second {name} at step {self.step} before its checkpoint was "
                f"written; continue from the run's last checkpoint with: {again}"
            )
        return f"stopped by {name} at step {self.step}; saved {self.path}; continue with: {again}"


class FileLock:
    """An exclusive, non-blocking ``flock`` of the file ``path`` (created; it holds the
    holder's pid) for the life of the ``with`` block. Another process holding it: RunDirBusy
    naming ``label`` and its pid. The kernel drops the lock when the holder dies, so a killed
    run never leaves a stale one. Re-entrant within a process (``train_main`` holds the run
    directory's lock while ``RunLog`` takes it again); a separately opened lock of the same
    file, in this process or another, conflicts. Deleted on a clean release."""

    _held: dict[str, list] = {}  # realpath -> [fd, depth], the locks this process holds

    def __init__(self, path: str, label: str) -> None:
        self.path, self.label = path, label

    def __enter__(self) -> FileLock:
        if fcntl is None:
            return self
        self.key = os.path.realpath(self.path)
        held = self._held.get(self.key)
        if held is not None:
            held[1] += 1
            return self
        self._held[self.key] = [self._acquire(), 1]
        return self

    def __exit__(self, *exc) -> None:
        if fcntl is None:
            return
        held = self._held[self.key]
        held[1] -= 1
        if held[1] == 0:
            del self._held[self.key]
            with contextlib.suppress(OSError):
                os.unlink(self.key)  # before the unlock: a waiter that opened it retries
            os.close(held[0])

    def _acquire(self) -> int:
        while True:
            try:
                fd = os.open(self.key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:  # a read-only directory, ...
                raise RunDirError(
                    f"{self.label} is not writable: cannot create its lock file "
                    f"{self.path} ({e.strerror})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunDirBusy(
                    f"{self.label} is in use by another process (pid {pid}, lock file "
                    f"{self.path}); wait for it to finish or stop it, or choose another "
                    f"{self.label.split()[0]}"
                ) from None
            # the holder may have released and deleted the file between our open and flock:
            # then we hold a lock on a dead file, and try again on the current one
            try:
                st, cur = os.fstat(fd), os.stat(self.key)
                current = (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino)
            except FileNotFoundError:
                current = False
            if current:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            os.close(fd)


def hold_run_dir(run_dir: str, *, create: bool = True):
    """The lock of ``run_dir`` (``RUN_DIR/.lock``, see :class:`FileLock`); ``create`` makes
    the directory first, else a missing one is not locked (the resume will report it).
    RunDirError when a file stands at ``run_dir`` or it cannot be created or written."""
    if create:
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise RunDirError(f"--run-dir {run_dir} is a file, not a directory")
        try:
            os.makedirs(run_dir, exist_ok=True)
        except OSError as e:  # a file on the path, a read-only parent, ...
            raise RunDirError(f"--run-dir {run_dir} cannot be created ({e.strerror})") from None
    elif not os.path.isdir(run_dir):
        return contextlib.nullcontext()
    return FileLock(os.path.join(run_dir, LOCK), f"--run-dir {run_dir}")


def run_checkpoints(run_dir: str) -> list[str]:
    """Every checkpoint file of ``run_dir``: ``ckpt_<step>.pt`` and ``checkpoint.pt``."""
    latest = os.path.join(run_dir, LATEST)
    return checkpoint_paths(run_dir) + ([latest] if os.path.exists(latest) else [])


def run_files(run_dir: str) -> list[str]:
    """The names of ``run_dir``'s run files (:data:`RUN_FILES`) that exist."""
    return [name for name in RUN_FILES if os.path.exists(os.path.join(run_dir, name))]


def check_run_dir(cfg) -> None:
    """A fresh run (``cfg.resume`` unset) must not start in a directory holding another run's
    checkpoints or run files (:data:`RUN_FILES`: a run killed before its first checkpoint
    leaves its logs and config.json) unless ``cfg.overwrite``: it would replace them, and a
    later ``--resume`` would pick up stale checkpoints."""
    if cfg.resume is not None or getattr(cfg, "overwrite", False):
        return
    if run_checkpoints(cfg.run_dir):
        raise ValueError(
            f"--run-dir {cfg.run_dir} holds the checkpoints of another run: continue it "
            f"with --resume {cfg.run_dir}, or pass --overwrite to start afresh there"
        )
    files = run_files(cfg.run_dir)
    if files:
        raise ValueError(
            f"--run-dir {cfg.run_dir} holds another run's {', '.join(files)} (no checkpoint to "
            "resume from): pass --overwrite to start afresh there, replacing them, or choose "
            "another --run-dir"
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
    """Context manager over one ``train()`` call: on entry it takes the run directory's lock
    (:func:`hold_run_dir`; RunDirBusy while another process runs there), checks the directory
    again under it (:func:`check_run_dir`, for a fresh trainer), writes ``config.json``
    (atomically), deletes the checkpoints, ``curve.png`` and TensorBoard events of an
    overwritten run (a fresh start), opens the CSV logs (a resumed run keeps their rows up to its
    checkpoint), TensorBoard (when ``cfg.tensorboard``) and the progress bar, and turns SIGINT
    and SIGTERM into :attr:`stop_signal` (main thread only; a signal ignored on entry stays
    ignored; a second signal raises :class:`RunInterrupted` at once); on exit it undoes all that.

    ``start_step`` is the trainer's step on entry; the run is a resumed one when
    ``cfg.resume`` is set. ``skip`` names the train-row keys that are counters, not TensorBoard
    scalars. :meth:`checkpoint_due` is the checkpoint schedule: every ``cfg.checkpoint_every``
    env steps, every ``cfg.checkpoint_minutes`` of wall time, at the end and at a stop signal.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(
        self,
        cfg,
        start_step: int,
        train_columns: list[str],
        eval_columns: list[str],
        *,
        skip: tuple[str, ...] = ("step", "epoch"),
        world: dict | None = None,
        quiet: bool = False,
    ) -> None:
        self.cfg, self.start_step, self.resumed = cfg, start_step, cfg.resume is not None
        self.world, self.quiet = world, quiet
        self.train_columns, self.eval_columns, self.skip = train_columns, eval_columns, skip
        self.evals = Every(cfg.eval_every, start_step)
        self.checkpoints = Every(cfg.checkpoint_every, start_step)
        self.wall_period = 60.0 * getattr(cfg, "checkpoint_minutes", 0.0)
        self.stop_signal: int | None = None
        self.step = start_step

    def __enter__(self) -> RunLog:
        from tqdm import tqdm

        cfg = self.cfg
        if self.quiet:  # a rank > 0 of a multi-process run: rank 0 writes the run's files
            self.last_checkpoint = _clock()
            self._install_handlers()
            return self
        self.lock = hold_run_dir(cfg.run_dir)
        self.lock.__enter__()
        try:
            if self.start_step == 0:  # a fresh trainer: the directory may have changed since
                check_run_dir(cfg)
            if not self.resumed:
                self._clear_old_run()
            config = dataclasses.asdict(cfg)
            if self.world is not None:  # a multi-process run: its world size and roles
                config["world"] = self.world
            _write_json(os.path.join(cfg.run_dir, "config.json"), config)
            resume_step = self.start_step if self.resumed else None
            self.eval_f, self.eval_w = open_csv(
                cfg.run_dir, "eval.csv", self.eval_columns, resume_step
            )
            self.train_f, self.train_w = open_csv(
                cfg.run_dir, "train.csv", self.train_columns, resume_step
            )
            self.tb = None
            if getattr(cfg, "tensorboard", False):
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(cfg.run_dir, "tb"), purge_step=resume_step)
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        self.bar = tqdm(
            total=cfg.total_steps,
            initial=self.start_step,
            disable=not cfg.progress,
            unit="step",
            dynamic_ncols=True,
        )
        self.last_checkpoint = _clock()
        self._install_handlers()
        return self

    def __exit__(self, *exc) -> None:
        self._restore_handlers()
        if self.quiet:
            return
        self.bar.close()
        self.eval_f.close()
        self.train_f.close()
        if self.tb is not None:
            self.tb.close()
        self.lock.__exit__(None, None, None)

    def _clear_old_run(self) -> None:
        """A fresh start: delete an overwritten run's checkpoints, curve and TensorBoard events
        (its CSVs and config.json are rewritten)."""
        run_dir = self.cfg.run_dir
        for path in run_checkpoints(run_dir):
            os.unlink(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(run_dir, "curve.png"))
        shutil.rmtree(os.path.join(run_dir, SHARDS), ignore_errors=True)
        tb = os.path.join(run_dir, "tb")
        if os.path.isdir(tb):
            for name in os.listdir(tb):
                if name.startswith("events.out.tfevents."):
                    os.unlink(os.path.join(tb, name))

    # ------------------------------------------------------------------ signals
    def _install_handlers(self) -> None:
        self.old_handlers: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            old = signal.getsignal(sig)
            if old is signal.SIG_IGN:  # e.g. SIGINT of a background job: stays ignored
                continue
            self.old_handlers[sig] = old
            signal.signal(sig, self._on_signal)

    def _restore_handlers(self) -> None:
        for sig, old in self.old_handlers.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.old_handlers = {}

    def _on_signal(self, signum: int, frame) -> None:
        if self.stop_signal is None:  # stop at the next checkpoint check
            self.stop_signal = signum
            return
        raise RunInterrupted(signum, self.step, None, self.cfg.run_dir)

    # ---------------------------------------------------------------- schedule
    def checkpoint_due(self, step: int, final: bool) -> str | None:
        """Whether to checkpoint now, after reaching env step ``step`` (``final``: the last
        one): ``"scheduled"`` at each multiple of ``checkpoint_every`` and at the end,
        ``"extra"`` when ``checkpoint_minutes`` of wall time have passed since the last one, or
        at a stop signal; None otherwise. The extra checkpoints change nothing but files: the
        step schedule, the RNG streams and the training computation stay as they were."""
        self.step = step
        due = "scheduled" if self.checkpoints.due(step, final) else None
        now = _clock()
        if due is None and (
            self.stop_signal is not None
            or (self.wall_period > 0 and now - self.last_checkpoint >= self.wall_period)
        ):
            due = "extra"
        if due is not None:
            self.last_checkpoint = now
        return due

    def stop_if_signalled(self, step: int, path: str, final: bool) -> None:
        """After the checkpoint at ``path``: raise :class:`RunInterrupted` if a stop signal came
        and the run is not finished anyway."""
        if self.stop_signal is not None and not final:
            raise RunInterrupted(self.stop_signal, step, path, self.cfg.run_dir)

    def train_row(self, row: dict) -> None:
        """Append ``row`` to ``train.csv`` (and its scalars to TensorBoard as ``train/<key>``)."""
        self._append("train", row, {k: v for k, v in row.items() if k not in self.skip})

    def eval_row(self, row: dict, scalars: dict[str, float]) -> None:
        """Append ``row`` to ``eval.csv``; ``scalars`` go to TensorBoard as ``eval/<key>``."""
        self._append("eval", row, scalars)

    def _append(self, name: str, row: dict, scalars: dict[str, float]) -> None:
        """Write ``row`` to ``<name>.csv`` and flush it; ``scalars`` to TensorBoard as
        ``<name>/<key>`` at ``row["step"]`` (nothing on a quiet rank)."""
        if self.quiet:
            return
        getattr(self, f"{name}_w").writerow(row)
        getattr(self, f"{name}_f").flush()
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"{name}/{k}", v, row["step"])

    def progress(
        self, steps: int, steps_per_s: float | None = None, last_eval: float | None = None
    ) -> None:
        """Advance the bar by ``steps``; with ``steps_per_s``, also refresh its figures."""
        if self.quiet:
            return
        self.bar.update(steps)
        if steps_per_s is not None:
            self.bar.set_postfix(sps=f"{steps_per_s:.0f}", eval=f"{last_eval:.2f}")


def _write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder + rename)."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=2), mode="w")


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

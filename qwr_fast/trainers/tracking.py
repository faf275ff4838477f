"""Weights & Biases tracking (``--track``, CleanRL's flag): the scalars a run writes to
TensorBoard (``train/<column>`` and ``eval/<key>``), plus its config, logged to a W&B run whose
local files live in ``RUN_DIR/wandb``. ``WANDB_MODE=offline`` keeps everything on the machine
(``wandb sync RUN_DIR/wandb/offline-run-*`` uploads it later). A resumed run (``--resume``)
continues the same W&B run (its id is kept in ``RUN_DIR/wandb/run_id``).

W&B is an optional extra: ``pip install -e ".[wandb]"``; without it ``--track`` is a one-line
error (:class:`MissingExtra`) before anything runs."""

from __future__ import annotations

import dataclasses
import glob
import importlib
import os
import uuid

from qwr_fast.trainers.runlog import RunLog

__all__ = ["MissingExtra", "TrackedRunLog", "TrackingConfig", "check_extras", "require"]

RUN_ID = "run_id"
"""RUN_DIR/wandb/run_id: the W&B run id of the run in RUN_DIR"""


@dataclasses.dataclass
class TrackingConfig:
    """The tracking and video flags every trainer's config shares (its base class)."""

    track: bool = False
    """log the TensorBoard scalars and the config to Weights & Biases (the wandb extra; its
    local files in RUN_DIR/wandb; WANDB_MODE=offline keeps them on the machine)"""
    wandb_project: str = "qwr_fast"
    """W&B project of --track"""
    wandb_entity: str | None = None
    """W&B entity (user or team) of --track; None: the default entity of the login"""
    capture_video: bool = False
    """record the greedy evaluation's first episode (eval env 0) every video_every evaluations
    to RUN_DIR/videos/step_<env step>.mp4 (the video extra; MuJoCo needs EGL or OSMesa)"""
    video_every: int = 1
    """with --capture-video: evaluations between videos (1: every evaluation)"""


class MissingExtra(ValueError):
    """A flag needs an optional extra that is not installed (a ValueError: the entry points
    report it as one line, exit status 2)."""


def require(module: str, flag: str, extra: str):
    """Import ``module``, or raise :class:`MissingExtra` naming ``flag`` and the extra that
    provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{flag} needs the `{extra}` extra (the `{module}` package is not installed): "
            f'pip install "qwr_fast[{extra}]"'
        ) from None


def check_extras(cfg) -> None:
    """Fail fast (:class:`MissingExtra`, one line) when ``cfg`` asks for W&B tracking or
    evaluation videos without their extras; videos of a MuJoCo env also need an OpenGL
    backend that works headless (EGL or OSMesa)."""
    if getattr(cfg, "track", False):
        require("wandb", "--track", "wandb")
    if getattr(cfg, "capture_video", False):
        from qwr_fast.trainers.video import check_video

        check_video(cfg)


class TrackedRunLog(RunLog):
    """A :class:`RunLog` that also logs its TensorBoard scalars (and the config) to W&B when
    ``cfg.track``. Every value is logged against ``global_step`` (W&B's step metric), so a
    resumed run may log again the steps after its checkpoint."""

    def __enter__(self) -> TrackedRunLog:
        super().__enter__()
        self.wandb_run = None
        if self.quiet:
            return self
        if not self.resumed:  # a fresh start (maybe --overwrite): no videos of an old run
            videos = os.path.join(self.cfg.run_dir, "videos")
            for path in glob.glob(os.path.join(videos, "step_*.mp4")):
                os.unlink(path)
        if getattr(self.cfg, "track", False):
            try:
                self.wandb_run = self._init_wandb()
            except BaseException:
                super().__exit__(None, None, None)
                raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.wandb_run is not None:
                self.wandb_run.finish(exit_code=0 if exc[0] is None else 1)
                self.wandb_run = None
        finally:
            super().__exit__(*exc)

    def _init_wandb(self):
        wandb = require("wandb", "--track", "wandb")
        cfg = self.cfg
        wdir = os.path.join(cfg.run_dir, "wandb")
        os.makedirs(wdir, exist_ok=True)
        id_path = os.path.join(wdir, RUN_ID)
        run_id = None
        if self.resumed and os.path.exists(id_path):
            with open(id_path) as f:
                run_id = f.read().strip() or None
        if run_id is None:
            run_id = uuid.uuid4().hex[:8]
        run = wandb.init(
            project=cfg.wandb_project,
            entity=cfg.wandb_entity,
            config=dataclasses.asdict(cfg),
            name=os.path.basename(os.path.normpath(cfg.run_dir)),
            dir=cfg.run_dir,
            id=run_id,
            resume="allow",
            settings=wandb.Settings(console="off", silent=True),
        )
        with open(id_path, "w") as f:
            f.write(run.id + "\n")
        run.define_metric("global_step")
        run.define_metric("*", step_metric="global_step")
        return run

    def train_row(self, row: dict) -> None:
        super().train_row(row)
        if self.wandb_run is not None:
            scalars = {f"train/{k}": v for k, v in row.items() if k not in self.skip}
            self.wandb_run.log({"global_step": row["step"], **scalars})

    def eval_row(self, row: dict, scalars: dict[str, float]) -> None:
        super().eval_row(row, scalars)
        if self.wandb_run is not None:
            # a trainer without TensorBoard eval scalars (dqn-train): the eval.csv columns
            scalars = scalars or {k: v for k, v in row.items() if k != "step"}
            logged = {f"eval/{k}": v for k, v in scalars.items()}
            self.wandb_run.log({"global_step": row["step"], **logged})

    def log_video(self, path: str, step: int, fps: int) -> None:
        """Attach the evaluation video at ``path`` to the W&B run (``eval/video``)."""
        if self.wandb_run is not None:
            import wandb

            self.wandb_run.log(
                {"global_step": step, "eval/video": wandb.Video(path, fps=fps, format="mp4")}
            )

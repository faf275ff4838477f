"""The run directory's safety (issue 21, items 2 and 5): one run at a time (an flock on
RUN_DIR/.lock, and on OUT.lock for qwr-collect), a fresh run never replaces another run's
files, wall-time checkpoints, and a stop at SIGINT / SIGTERM that saves and resumes exactly."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import torch

from qwr_fast.cli.qwr_collect import main as qwr_collect
from qwr_fast.cli.train import dqn_train, qwr_train
from qwr_fast.trainers import dqn, ppo, qwr
from qwr_fast.trainers.runlog import LOCK, RunDirBusy, RunLog

QWR_ARGV = [
    "--env",
    "BitFlip-8",
    "--preset",
    "bitflip",
    "--steps-per-epoch",
    "40",
    "--critic-steps",
    "2",
    "--actor-steps",
    "2",
    "--batch-size",
    "16",
    "--hidden",
    "16",
    "--eval-every",
    "80",
    "--eval-episodes",
    "2",
    "--checkpoint-every",
    "1000000",
    "--device",
    "cpu",
    "--no-progress",
    "--no-tensorboard",
]


@contextmanager
def held_by_another(path):
    """Hold ``path``'s flock through a file opened here: to the trainers, another holder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"424242\n")
    try:
        yield
    finally:
        os.close(fd)


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_second_run_is_refused_while_the_first_holds_the_lock(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = [*QWR_ARGV, "--total-steps", "40", "--run-dir", str(run_dir)]
    with held_by_another(str(run_dir / LOCK)):
        for extra in ([], ["--overwrite"]):  # --overwrite does not bypass the lock
            assert qwr_train([*argv, *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "pid 424242" in err and "in use" in err
        assert not (run_dir / "config.json").exists()  # the holder's files are untouched
        # the library path (Trainer.train) is refused the same way, before writing anything
        trainer = qwr.QWRTrainer(qwr.QWRConfig(**_cfg(run_dir, 40)))
        with pytest.raises(RunDirBusy, match="pid 424242"):
            trainer.train()
        assert os.listdir(run_dir) == [LOCK]
    # the holder gone (a killed one too: the kernel drops its lock), the run starts
    assert qwr_train(argv) == 0
    assert not (run_dir / LOCK).exists()  # released and removed at the end


def test_qwr_collect_is_refused_while_its_output_is_locked(tmp_path, capsys):
    out = tmp_path / "d.npz"
    argv = ["--env", "BitFlip-8", "--steps", "20", "--out", str(out)]
    with held_by_another(f"{out}.lock"):
        assert qwr_collect(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err and "pid 424242" in err
        assert not out.exists()
    assert qwr_collect(argv) == 0 and out.exists() and not os.path.exists(f"{out}.lock")


@pytest.mark.parametrize("name", ["eval.csv", "config.json", "train.csv"])
def test_fresh_run_refuses_a_directory_with_only_logs(tmp_path, capsys, name):
    """A run killed before its first checkpoint leaves logs: the next fresh run into that
    directory is refused (one line, exit 2) rather than replacing them; --overwrite replaces."""
    (tmp_path / name).write_text("step\n40\n")
    argv = [*QWR_ARGV, "--total-steps", "40", "--run-dir", str(tmp_path)]
    assert qwr_train(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and "--overwrite" in err
    assert (tmp_path / name).read_text() == "step\n40\n"
    assert qwr_train([*argv, "--overwrite"]) == 0
    assert (tmp_path / "ckpt_40.pt").exists() and (tmp_path / name).read_text() != "step\n40\n"


def _cfg(run_dir, total, **kw):
    return dict(
        env="BitFlip-8",
        run_dir=str(run_dir),
        total_steps=total,
        steps_per_epoch=40,
        critic_steps=2,
        actor_steps=2,
        batch_size=16,
        hidden=16,
        num_envs=2,
        eval_every=80,
        eval_episodes=2,
        checkpoint_every=1_000_000,
        progress=False,
        tensorboard=False,
        device="cpu",
        **kw,
    )


def test_wall_time_checkpoints_change_nothing_but_files(tmp_path, monkeypatch):
    """checkpoint_minutes writes a checkpoint after the epoch in which its time ran out; the
    run equals one without them, and a resume from one equals the uninterrupted run."""
    clock = iter(range(0, 10**6, 31))  # each read of the run log's clock: 31 s later
    monkeypatch.setattr("qwr_fast.trainers.runlog._clock", lambda: next(clock))
    cfg = _cfg(tmp_path / "a", 200, checkpoint_minutes=1, keep_checkpoints=5)
    with_ckpts = qwr.QWRTrainer(qwr.QWRConfig(**cfg))
    with_ckpts.train()
    # epochs end at 31 s, 62 s (due), 93 s, 124 s (due), and at the end (scheduled)
    assert _ckpts(tmp_path / "a") == [80, 160, 200]
    plain = qwr.QWRTrainer(qwr.QWRConfig(**_cfg(tmp_path / "b", 200, checkpoint_minutes=0)))
    plain.train()
    assert _ckpts(tmp_path / "b") == [200]
    for name in ("policy", "critic", "target"):
        assert _equal_state(getattr(with_ckpts, name), getattr(plain, name)), name
    (tmp_path / "a" / "ckpt_200.pt").unlink()  # resume from the last wall-time checkpoint
    resumed = qwr.QWRTrainer.resumed(str(tmp_path / "a"))
    assert resumed.global_step == 160
    resumed.train()
    for name in ("policy", "critic", "target"):
        assert _equal_state(getattr(resumed, name), getattr(plain, name)), name
    assert (tmp_path / "a" / "eval.csv").read_text() == (tmp_path / "b" / "eval.csv").read_text()


def test_wall_time_checkpoints_add_no_ppo_snapshot(tmp_path, monkeypatch):
    """ppo-train's ckpt_<step>.pt snapshots are blueprints of the checkpoint_every schedule: a
    wall-time checkpoint rewrites checkpoint.pt only."""
    clock = iter(range(0, 10**6, 61))  # every update: a minute
    monkeypatch.setattr("qwr_fast.trainers.runlog._clock", lambda: next(clock))
    cfg = ppo.PPOConfig(
        env="BitFlip-4",
        num_envs=2,
        num_steps=8,
        hidden=16,
        total_steps=64,
        checkpoint_every=32,
        checkpoint_minutes=1,
        eval_every=64,
        eval_episodes=2,
        progress=False,
        tensorboard=False,
        run_dir=str(tmp_path),
    )
    saves = []
    monkeypatch.setattr(ppo.PPOTrainer, "state_dict", _counting(ppo.PPOTrainer.state_dict, saves))
    ppo.PPOTrainer(cfg).train()
    assert saves == [16, 32, 48, 64]  # a checkpoint after each update ...
    assert _ckpts(tmp_path) == [32, 64]  # ... but snapshots at the schedule's steps only
    assert (tmp_path / "checkpoint.pt").exists()


def _counting(state_dict, saves):
    def counted(self):
        saves.append(self.global_step)
        return state_dict(self)

    return counted


def _ckpts(run_dir) -> list[int]:
    return sorted(int(f[5:-3]) for f in os.listdir(run_dir) if f.startswith("ckpt_"))


def test_sigint_saves_and_the_resume_equals_an_uninterrupted_run(tmp_path):
    """A real qwr-train process, Ctrl-C'd mid-run: it ends the epoch, saves, prints one line
    (no traceback) naming the checkpoint and the --resume, exits 130; the resumed run equals
    an uninterrupted one."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "qwr_fast.cli", "qwr-train", *QWR_ARGV]
    cmd += ["--total-steps", "1000000", "--run-dir", str(run_dir)]
    proc = subprocess.Popen(  # SIGINT at its default even where this test's shell ignores it
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    train_csv, deadline = run_dir / "train.csv", time.monotonic() + 60
    while not (train_csv.exists() and train_csv.read_text().count("\n") >= 3):  # two epochs
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    ckpts = [f for f in os.listdir(run_dir) if f.startswith("ckpt_")]
    assert len(ckpts) == 1, ckpts
    step = int(ckpts[0][5:-3])
    assert step % 40 == 0 and step >= 80
    assert f"saved {run_dir / ckpts[0]}" in err and f"qwr-train --resume {run_dir}" in err
    assert not (run_dir / LOCK).exists()

    total = step + 80
    assert qwr_train(["--resume", str(run_dir), "--total-steps", str(total), "--no-progress"]) == 0
    straight_dir = tmp_path / "straight"
    assert qwr_train([*QWR_ARGV, "--total-steps", str(total), "--run-dir", str(straight_dir)]) == 0
    resumed, straight = (qwr.QWRTrainer.resumed(str(d)) for d in (run_dir, straight_dir))
    assert resumed.global_step == straight.global_step == total
    for name in ("policy", "critic", "target"):
        assert _equal_state(getattr(resumed, name), getattr(straight, name)), name
    assert (run_dir / "eval.csv").read_text() == (straight_dir / "eval.csv").read_text()


def test_sigterm_stops_dqn_at_a_step_boundary_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    """dqn-train has its own loop: SIGTERM at step 204 (between train.csv rows and scheduled
    checkpoints) saves checkpoint.pt only and exits 143; the resume equals the uninterrupted
    run, its train.csv included (the step and train_return columns)."""
    kw = dict(
        env="BitFlip-4",
        num_envs=4,
        hidden=16,
        batch_size=8,
        learning_starts=40,
        target_every=20,
        eps_fraction=0.0,  # constant epsilon: its schedule depends on total_steps
        eps_start=0.3,
        eps_end=0.3,
        eval_every=100,
        eval_episodes=2,
        checkpoint_every=1000,
        progress=False,
    )
    straight = dqn.DQNTrainer(dqn.DQNConfig(**kw, total_steps=1200, run_dir=str(tmp_path / "a")))
    straight.train()

    step = dqn.DQNTrainer.step
    before = signal.getsignal(signal.SIGTERM)

    def step_then_signal(self):
        stats = step(self)
        if self.global_step == 204:
            os.kill(os.getpid(), signal.SIGTERM)
        return stats

    monkeypatch.setattr(dqn.DQNTrainer, "step", step_then_signal)
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items() if k != "progress"]
    argv += ["--preset", "none", "--no-progress", "--total-steps", "1200"]
    argv += ["--run-dir", str(tmp_path / "b")]
    assert dqn_train(argv) == 143
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SIGTERM at step 204" in err and "--resume" in err
    assert os.listdir(tmp_path / "b").count("checkpoint.pt") == 1
    assert signal.getsignal(signal.SIGTERM) == before  # the handlers are restored
    monkeypatch.undo()

    assert dqn_train(["--resume", str(tmp_path / "b"), "--no-progress"]) == 0
    resumed = dqn.DQNTrainer.resumed(str(tmp_path / "b"))
    assert resumed.global_step == 1200
    assert _equal_state(straight.q, resumed.q)
    assert (tmp_path / "a" / "eval.csv").read_text() == (tmp_path / "b" / "eval.csv").read_text()

    def columns(path, drop=("steps_per_s", "wall_s")):
        lines = [line.split(",") for line in path.read_text().splitlines()]
        keep = [i for i, c in enumerate(lines[0]) if c not in drop]
        return [[row[i] for i in keep] for row in lines]

    assert columns(tmp_path / "a" / "train.csv") == columns(tmp_path / "b" / "train.csv")


def test_runlog_restores_the_signal_handlers(tmp_path):
    cfg = qwr.QWRConfig(**_cfg(tmp_path, 40))
    # a run keeps an ignored SIGINT ignored (e.g. under nohup or a background job), so start
    # from Python's own handler whatever the test process inherited
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT)
        with RunLog(cfg, 0, ["step"], ["step"]):
            assert signal.getsignal(signal.SIGINT) is not before
            assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, inherited)

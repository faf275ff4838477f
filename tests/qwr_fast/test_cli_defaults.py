"""The trainers' command-line defaults (issue 21): ``--preset auto`` picks the env family's
preset and records it, ``--resume`` refuses the flags it cannot apply and a --total-steps below
the step reached, a run directory that is a file, not writable or another trainer's is one
line, a missing optional extra names its pip extra, and every ``--help`` fits 80 columns."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest

from qwr_fast.cli.common import env_family, parse_config, resolve_preset
from qwr_fast.cli.train import aql_train, dqn_train, ppo_train, qwr_train
from qwr_fast.trainers import aql, dqn, ppo, qwr

TRAINERS = {
    "qwr-train": (qwr_train, qwr.QWRConfig, qwr.PRESETS),
    "aql-train": (aql_train, aql.AQLConfig, aql.PRESETS),
    "ppo-train": (ppo_train, ppo.PPOConfig, ppo.PRESETS),
    "dqn-train": (dqn_train, dqn.DQNConfig, dqn.PRESETS),
}
TINY_QWR = ["--env", "BitFlip-8", "--total-steps", "40", "--steps-per-epoch", "20",
            "--critic-steps", "2", "--actor-steps", "2", "--batch-size", "8", "--hidden", "8",
            "--eval-every", "20", "--eval-episodes", "2", "--checkpoint-every", "20",
            "--no-progress", "--no-tensorboard"]  # fmt: skip


@pytest.mark.parametrize(
    "env,family",
    [("BitFlip-32", "bitflip"), ("BitFlipSubset-8", "bitflip"), ("HalfCheetah-v5", "mujoco"),
     ("Hopper-v4", "mujoco"), ("ALE/Breakout-v5", "atari"), ("MinAtar/Breakout", "minatar"),
     ("Hanabi-Small", "hanabi"), ("Pendulum-v1", "none"), ("CartPole-v1", "none"),
     ("BitFlip", "none")],
)  # fmt: skip
def test_env_family(env, family):
    assert env_family(env) == family


def test_auto_falls_back_to_none_without_the_trainers_preset():
    assert resolve_preset("HalfCheetah-v5", qwr.PRESETS) == "mujoco"
    assert resolve_preset("HalfCheetah-v5", ppo.PRESETS) == "none"  # ppo-train has no mujoco
    assert resolve_preset("Hanabi-Small", dqn.PRESETS) == "none"
    assert resolve_preset("Hanabi-Small", ppo.PRESETS) == "hanabi"
    assert resolve_preset("MinAtar/Breakout", aql.PRESETS) == "none"


@pytest.mark.parametrize("prog", sorted(TRAINERS))
def test_auto_is_the_default_and_says_which(prog, capsys):
    _, config_cls, presets = TRAINERS[prog]
    cfg = parse_config(prog, config_cls, presets, ["--env", "BitFlip-8"])
    assert cfg.preset == "bitflip"
    for key, value in presets["bitflip"].items():
        assert getattr(cfg, key) == value, key
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{prog}: --preset auto: applied preset bitflip (env BitFlip-8)"]
    # an explicit flag still wins, an explicit --preset auto records what it resolved to
    cfg = parse_config(prog, config_cls, presets, ["--preset=auto", "--env", "BitFlip-8",
                                                    "--hidden", "3"])  # fmt: skip
    assert (cfg.preset, cfg.hidden) == ("bitflip", 3)
    # --preset none: today's defaults, no line
    capsys.readouterr()
    cfg = parse_config(prog, config_cls, presets, ["--preset", "none", "--env", "BitFlip-8"])
    assert cfg == config_cls(env="BitFlip-8", preset="none")
    assert capsys.readouterr().err == ""


def test_auto_without_a_family_preset_is_none(capsys):
    cfg = parse_config("ppo-train", ppo.PPOConfig, ppo.PRESETS, ["--env", "HalfCheetah-v5"])
    assert cfg == ppo.PPOConfig(env="HalfCheetah-v5", preset="none")
    assert "applied preset none" in capsys.readouterr().err


def test_python_configs_apply_no_preset():
    cfg = qwr.QWRConfig(env="BitFlip-8")
    assert cfg.preset == "auto" and cfg.gamma == 0.99 and cfg.hidden == 256


@pytest.fixture(scope="module")
def qwr_run(tmp_path_factory):
    """A finished tiny qwr-train run (step 40, preset auto -> bitflip)."""
    run_dir = tmp_path_factory.mktemp("qwr") / "run"
    err = io.StringIO()
    with redirect_stderr(err):
        assert qwr_train([*TINY_QWR, "--run-dir", str(run_dir)]) == 0
    assert err.getvalue() == "qwr-train: --preset auto: applied preset bitflip (env BitFlip-8)\n"
    return run_dir


def _copy(run_dir, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def test_config_json_records_the_resolved_preset(qwr_run):
    cfg = json.loads((qwr_run / "config.json").read_text())
    assert cfg["preset"] == "bitflip" and cfg["gamma"] == 0.5


def test_resume_refuses_the_flags_it_cannot_apply(qwr_run, tmp_path, capsys):
    run_dir = _copy(qwr_run, tmp_path)
    before = (run_dir / "config.json").read_text()
    argv = ["--resume", str(run_dir), "--q-lr", "0.5", "--gamma=0.9", "--no-normalize-q"]
    assert qwr_train(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--q-lr, --gamma, --no-normalize-q cannot change" in err[0]
    assert "--total-steps" in err[0] and "--threads" in err[0]
    assert (run_dir / "config.json").read_text() == before


def test_resume_refuses_fewer_steps_than_reached(qwr_run, tmp_path, capsys):
    run_dir = _copy(qwr_run, tmp_path)
    before = (run_dir / "config.json").read_text()
    assert qwr_train(["--resume", str(run_dir), "--total-steps", "20", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "below the step this run has reached (40)" in err[0]
    assert (run_dir / "config.json").read_text() == before


def test_resume_applies_the_allowed_flags(qwr_run, tmp_path):
    run_dir = _copy(qwr_run, tmp_path)
    argv = ["--resume", str(run_dir), "--total-steps=60", "--no-progress", "--threads", "1",
            "--checkpoint-every=20", "--keep-checkpoints", "3",
            "--checkpoint-minutes", "0"]  # fmt: skip
    assert qwr_train(argv) == 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert (cfg["total_steps"], cfg["keep_checkpoints"], cfg["checkpoint_minutes"]) == (60, 3, 0)
    assert (cfg["preset"], cfg["gamma"]) == ("bitflip", 0.5)  # the saved config otherwise


@pytest.mark.parametrize("prog", ["aql-train", "ppo-train", "dqn-train"])
def test_resume_of_another_trainers_run_names_it(prog, qwr_run, capsys):
    # named before the flags are checked: --hidden would be refused otherwise
    assert TRAINERS[prog][0](["--resume", str(qwr_run), "--no-progress", "--hidden", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{prog}: error: --resume {qwr_run}: this run was written by qwr-train: continue it "
        f"with qwr-train --resume {qwr_run}"
    ]


def test_run_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    for argv in (["--run-dir", str(path)], ["--run-dir", str(path / "sub")]):
        assert qwr_train([*TINY_QWR, *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("qwr-train: error: --run-dir"), err
    assert qwr_train(["--resume", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"qwr-train: error: --resume {path} is a file, not a run directory"]
    assert path.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_run_dir(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert qwr_train([*TINY_QWR, "--run-dir", str(ro)]) == 2
        assert qwr_train([*TINY_QWR, "--run-dir", str(ro / "sub")]) == 2
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"qwr-train: error: --run-dir {ro} is not writable: cannot create its lock file "
        f"{ro / '.lock'} (Permission denied)",
        f"qwr-train: error: --run-dir {ro / 'sub'} cannot be created (Permission denied)",
    ]


def test_missing_extra_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco: ImportError
    run_dir = tmp_path / "run"
    argv = ["--env", "HalfCheetah-v5", "--run-dir", str(run_dir), "--no-progress"]
    assert qwr_train(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "qwr-train: error: the MuJoCo environments need the `mujoco` package: "
        "pip install qwr_fast[mujoco]"
    ]  # one line: the --preset auto line comes only once the trainer is built
    assert not run_dir.exists()


def _help(fn, monkeypatch, columns: int) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as e:
        fn(["--help"])
    assert e.value.code == 0
    return out.getvalue().splitlines()


def _entry_points() -> dict:
    from qwr_fast.cli import demo, qwr_collect, search

    mains = {"qwr-collect": qwr_collect.main, "qwr-search": search.main, "demo": demo.main}
    return {**{prog: fn for prog, (fn, _, _) in TRAINERS.items()}, **mains}


@pytest.mark.parametrize("prog", [*sorted(TRAINERS), "qwr-collect", "qwr-search", "demo"])
def test_help_fits_80_columns(prog, monkeypatch, capsys):
    fn = _entry_points()[prog]
    lines = _help(fn, monkeypatch, 80)
    assert len(lines) > 5 and (prog not in TRAINERS or "--preset" in "\n".join(lines))
    wide = [line for line in lines if len(line) > 80]
    assert not wide, f"{prog} --help lines wider than 80 columns: {wide[:3]}"
    if prog != "demo":  # tyro: the check can fail, at 120 columns lines are over 80
        assert max(len(line) for line in _help(fn, monkeypatch, 120)) > 80
    assert capsys.readouterr().err == ""  # --help applies no preset and says nothing


def test_run_dir_turning_read_only_mid_run_is_one_line_and_resumable(tmp_path, monkeypatch, capsys):
    # The second checkpoint cannot be written (as when the directory becomes read-only or the
    # disk fills): one line naming the file and the --resume; the first checkpoint is intact.
    import errno

    import qwr_fast.trainers._common as common
    from qwr_fast.cli.train import qwr_train

    real, calls = common.save_checkpoint, []

    def failing(path, state):
        calls.append(path)
        if len(calls) == 2:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, state)

    monkeypatch.setattr(common, "save_checkpoint", failing)
    run = tmp_path / "run"
    argv = ["--env", "BitFlip-8", "--preset", "none", "--total-steps", "120", "--steps-per-epoch",
            "40", "--critic-steps", "2", "--actor-steps", "2", "--batch-size", "8", "--hidden",
            "8", "--eval-every", "40", "--eval-episodes", "1", "--checkpoint-every", "40",
            "--run-dir", str(run), "--no-progress", "--no-tensorboard"]  # fmt: skip
    assert qwr_train(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0] and f"--resume {run}" in err[0], err
    monkeypatch.setattr(common, "save_checkpoint", real)
    assert qwr_train(["--resume", str(run), "--no-progress"]) == 0
    assert (run / "ckpt_120.pt").exists()


def test_every_trainer_flag_and_default_is_the_contract():
    """The trainers' flags and defaults are a contract users' scripts depend on: the config
    fields (declared in each trainer or once in qwr_fast.trainers.config) and their defaults
    equal the committed snapshot tests/qwr_fast/config_fields.json, taken before the shared
    fields moved to qwr_fast.trainers.config. A new flag updates the snapshot deliberately."""
    import dataclasses
    import json
    import os

    from qwr_fast.trainers.aql import AQLConfig
    from qwr_fast.trainers.dqn import DQNConfig
    from qwr_fast.trainers.ppo import PPOConfig
    from qwr_fast.trainers.qwr import QWRConfig

    with open(os.path.join(os.path.dirname(__file__), "config_fields.json")) as f:
        snapshot = json.load(f)
    configs = {"qwr-train": QWRConfig, "aql-train": AQLConfig}
    configs |= {"ppo-train": PPOConfig, "dqn-train": DQNConfig}
    for prog, cls in configs.items():
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert fields == snapshot[prog], prog

"""Checkpoints hold only data: a pickled payload is refused (one line naming the file and the
global) through load_checkpoint, qwr-search --blueprint and every trainer's --resume, without
running it; real checkpoints of every trainer and env family round-trip; checkpoints written
by the previous version (snapshot objects pickled) still load and restore exactly."""

import hashlib
import importlib.util
import io
import pickle
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from qwr_fast.checkpoint import (
    ALLOWED_GLOBALS,
    MAGIC,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from qwr_fast.cli.search import main as search_main
from qwr_fast.cli.train import aql_train, dqn_train, ppo_train, qwr_train
from qwr_fast.data.collect import Collector, make_env, restore_vector_env_attrs
from qwr_fast.envs import make


class _Payload:
    """Creates ``marker`` when unpickled: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_payload(path, obj, *, zip_format=True) -> None:
    """A checkpoint file of ``obj`` as the previous save_checkpoint wrote it (MAGIC + SHA-256 +
    plain ``torch.save``, objects pickled as they are)."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zip_format)
    payload = buf.getvalue()
    path.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)


def _hostile(tmp_path, name="ckpt_40.pt", zip_format=True):
    marker = tmp_path / "marker"
    path = tmp_path / name
    state = {"kind": "ppo", "format": 1, "config": {"env": "BitFlip-4"}, "x": _Payload(marker)}
    _write_payload(path, state, zip_format=zip_format)
    return path, marker


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy-torch-format"])
def test_payload_is_refused_without_running(tmp_path, zip_format):
    path, marker = _hostile(tmp_path, zip_format=zip_format)
    before = set(torch.serialization.get_safe_globals())
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "io.open" in msg
    assert not marker.exists()
    assert set(torch.serialization.get_safe_globals()) == before  # nothing left allowed
    # the same file through an unrestricted load runs the payload: the test can fail
    torch.load(io.BytesIO(path.read_bytes()[len(MAGIC) + 32 :]), weights_only=False)
    assert marker.exists()


def test_search_blueprint_payload_is_a_one_line_error(tmp_path, capsys):
    path, marker = _hostile(tmp_path, "checkpoint.pt")
    argv = ["--env", "BitFlip-4", "--blueprint", str(path), "--planner", "blueprint"]
    assert search_main([*argv, "--out", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qwr-search: error: checkpoint") and err.count("\n") == 1
    assert "io.open" in err and not marker.exists()


@pytest.mark.parametrize(
    "main,prog,latest",
    [(qwr_train, "qwr-train", "ckpt_40.pt"), (aql_train, "aql-train", "ckpt_40.pt"),
     (ppo_train, "ppo-train", "checkpoint.pt"), (dqn_train, "dqn-train", "checkpoint.pt")],
)  # fmt: skip
def test_resume_payload_is_a_one_line_error(tmp_path, capsys, main, prog, latest):
    """The checkpoint --resume reads (the newest ckpt_<step>.pt, or checkpoint.pt for the
    blueprint trainers) carries the payload."""
    save_checkpoint(tmp_path / "ckpt_20.pt", {"format": 1})  # an older, harmless snapshot
    _, marker = _hostile(tmp_path, latest)
    assert main(["--resume", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: checkpoint") and err.count("\n") == 1
    assert latest in err and "io.open" in err and not marker.exists()


def test_save_refuses_a_state_that_is_not_data(tmp_path):
    with pytest.raises(TypeError, match="Collector"):
        save_checkpoint(tmp_path / "ckpt_1.pt", {"c": Collector.__new__(Collector)})
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ real checkpoints round-trip
def _globals(path) -> set:
    payload = path.read_bytes()[len(MAGIC) + 32 :]
    return set(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(payload)))


def _trainers():
    from qwr_fast.trainers.aql import AQLConfig, AQLTrainer
    from qwr_fast.trainers.dqn import DQNConfig, DQNTrainer
    from qwr_fast.trainers.ppo import PPOConfig, PPOTrainer
    from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer

    common = dict(num_envs=2, hidden=8, eval_episodes=1, eval_every=10**6, progress=False)
    return {
        "qwr": (QWRTrainer, QWRConfig, dict(steps_per_epoch=20, critic_steps=1, actor_steps=1,
                                            batch_size=8, replay_size=100, tensorboard=False)),
        "aql": (AQLTrainer, AQLConfig, dict(steps_per_epoch=20, updates_per_epoch=1,
                                            learning_starts=10, batch_size=8, replay_size=100,
                                            proposal_width=8, num_proposal=5, num_uniform=11,
                                            entropy_samples=3, tensorboard=False)),
        "ppo": (PPOTrainer, PPOConfig, dict(num_steps=8, num_minibatches=1, tensorboard=False)),
        "dqn": (DQNTrainer, DQNConfig, dict(buffer_size=100, learning_starts=10, train_every=2,
                                            target_every=10)),
    }, common  # fmt: skip


@pytest.mark.parametrize(
    "algo,env",
    [("qwr", "BitFlip-4"), ("qwr", "Pendulum-v1"), ("aql", "CartPole-v1"),
     ("ppo", "MinAtar/Breakout"), ("dqn", "BitFlip-4")],
)  # fmt: skip
def test_trainer_checkpoints_hold_only_allowed_globals_and_resume(tmp_path, algo, env):
    if env.startswith("MinAtar") and importlib.util.find_spec("minatar") is None:
        pytest.skip("needs minatar")
    trainers, common = _trainers()
    trainer_cls, config_cls, kw = trainers[algo]
    cfg = config_cls(**{**common, **kw, "env": env, "total_steps": 40, "run_dir": str(tmp_path)})
    trainer = trainer_cls(cfg)
    trainer.step() if algo == "dqn" else trainer.run_epoch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "restarts its episodes": the env state is saved
        path = trainer.save()
        resumed = trainer_cls.resumed(str(tmp_path))
    assert _globals(Path(path)) <= set(ALLOWED_GLOBALS)
    assert resumed.global_step == trainer.global_step
    obs = getattr(trainer, "collector", None)
    a = trainer.obs if obs is None else trainer.collector.obs
    b = resumed.obs if obs is None else resumed.collector.obs
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- env snapshots as plain data
FAMILIES = {
    "BitFlip-8": None,
    "MinAtar/Breakout": "minatar",
    "MinAtar/Seaquest": "minatar",
    "ALE/Pong-v5": "ale_py",
    "HalfCheetah-v5": "mujoco",
    "Hanabi-Small": "pyspiel",
}


def _family_env(env_id, seed):
    dep = FAMILIES[env_id]
    if dep is not None and importlib.util.find_spec(dep) is None:
        pytest.skip(f"{env_id} needs {dep}")
    env = make(env_id, 2, seed=seed)
    env.reset()
    return env


def _actions(env, rng):
    if hasattr(env, "_legal"):  # Hanabi: a legal move per env
        return np.array([rng.choice(legal) for legal in env._legal])
    space = env.action_space
    return rng.integers(0, 2, space.shape) if isinstance(space, gym.spaces.MultiBinary) else (
        space.sample())  # fmt: skip


def _replays_exactly(a, b, steps=30):
    rng = np.random.default_rng(0)
    a.action_space.seed(1)
    for _ in range(steps):
        act = _actions(a, rng)
        for x, y in zip(a.step(act)[:4], b.step(act)[:4], strict=True):
            np.testing.assert_array_equal(x, y)


def _advance(env, steps=15):
    rng = np.random.default_rng(5)
    env.action_space.seed(5)
    for _ in range(steps):
        env.step(_actions(env, rng))


@pytest.mark.parametrize("env_id", list(FAMILIES))
def test_env_state_round_trips_as_plain_data(tmp_path, env_id):
    real = _family_env(env_id, seed=3)
    _advance(real)
    path = tmp_path / "ckpt_1.pt"
    save_checkpoint(path, {"env": ("get_state", real.get_state()), "env_obs": real._obs.copy()})
    assert _globals(path) <= set(ALLOWED_GLOBALS)
    state = load_checkpoint(path)["env"][1]
    other = _family_env(env_id, seed=99)
    np.testing.assert_array_equal(other.set_state(state), real._obs)
    _replays_exactly(real, other)


@pytest.mark.parametrize("env_id", list(FAMILIES))
def test_previous_version_checkpoint_still_restores_exactly(tmp_path, env_id):
    """A checkpoint as the code before this change wrote it: the EnvState with the snapshot
    objects themselves pickled (MinAtar games with their RandomState, ALEState, MjData,
    pyspiel.State); they are read as data, never constructed by the unpickler."""
    real = _family_env(env_id, seed=3)
    _advance(real)
    path = tmp_path / "ckpt_1.pt"
    _write_payload(path, {"format": 1, "env": ("get_state", real.get_state()), "n": 1})
    state = load_checkpoint(path)["env"][1]
    other = _family_env(env_id, seed=99)
    np.testing.assert_array_equal(other.set_state(state), real._obs)
    _replays_exactly(real, other)


def test_a_malformed_plain_snapshot_is_refused(tmp_path):
    real = _family_env("MinAtar/Breakout", seed=3)
    path = tmp_path / "ckpt_1.pt"
    save_checkpoint(path, {"env": real.get_state()})
    state = load_checkpoint(path)["env"]
    state.arrays["game"][0]["game"]["step"] = 0  # an attribute the game does not have
    with pytest.raises(ValueError, match="MinAtar snapshot 'game'"):
        _family_env("MinAtar/Breakout", seed=1).set_state(state)


# ----------------------------------------------------------- gymnasium vector envs (no get_state)
def test_old_pickled_env_state_is_not_unpickled(tmp_path):
    """The previous Collector pickled a gymnasium vector env's fields; such a checkpoint still
    loads, but the bytes are never unpickled: the resumed run restarts its episodes."""
    marker = tmp_path / "marker"
    state = {"env": ("pickle", pickle.dumps({"x": _Payload(marker)})), "env_obs": None}
    path = tmp_path / "ckpt_1.pt"
    _write_payload(path, state)
    env = make_env("Pendulum-v1", 2, 0)
    collector = Collector(env, seed=0)
    with pytest.warns(UserWarning, match="pickled env state .* restarts its episodes"):
        collector.load_state_dict(load_checkpoint(path), reset_seed=7)
    assert not marker.exists()


def test_env_state_that_is_not_data_is_not_saved(tmp_path):
    class Opaque(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
        action_space = gym.spaces.Discrete(2)

        def __init__(self):
            self.handle = object()  # e.g. a simulator: not plain data

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(1, np.float32), {}

        def step(self, action):
            return np.zeros(1, np.float32), 0.0, False, False, {}

    env = gym.vector.SyncVectorEnv([Opaque, Opaque])
    collector = Collector(env, seed=0)
    with pytest.warns(UserWarning, match="envs\\[0\\].handle is a builtins.object"):
        assert collector.state_dict()["env"] is None


def test_vector_env_state_of_another_env_is_refused():
    pendulum = Collector(make_env("Pendulum-v1", 2, 0), seed=0).state_dict()["env"]
    with pytest.raises(ValueError, match="does not fit"):
        restore_vector_env_attrs(make_env("CartPole-v1", 2, 0), pendulum[1])

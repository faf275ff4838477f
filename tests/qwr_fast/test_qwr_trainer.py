import csv
import importlib.util
import os
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from torch.utils._python_dispatch import TorchDispatchMode

from qwr_fast.checkpoint import CheckpointError, latest_checkpoint
from qwr_fast.cli.qwr_collect import CollectConfig, collect_dataset
from qwr_fast.cli.qwr_collect import main as qwr_collect_main
from qwr_fast.cli.train import qwr_train as qwr_train_main
from qwr_fast.data.collect import Collector
from qwr_fast.data.datasets import load_dataset
from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

TINY = dict(
    steps_per_epoch=40,
    critic_steps=4,
    actor_steps=4,
    batch_size=16,
    hidden=16,
    num_envs=2,
    eval_every=40,
    eval_episodes=2,
    checkpoint_every=40,
    progress=False,
    tensorboard=False,
)

FAMILY_ENV = {
    "bitflip": "BitFlip-8",
    "mujoco": "HalfCheetah-v5",
    "minatar": "MinAtar/Breakout",
    "atari": "ALE/Breakout-v5",
}
FAMILY_DEP = {"mujoco": "mujoco", "minatar": "minatar", "atari": "ale_py"}


def _tiny_preset(preset: str) -> dict:
    """``preset``'s config shrunk to a few-second run (TINY budget, width 16, small replay, short
    eval episodes); skips the test, with the reason, when the preset's env package is missing."""
    dep = FAMILY_DEP.get(preset)
    if dep is not None and importlib.util.find_spec(dep) is None:
        pytest.skip(f"preset {preset}: the '{dep}' package (extra) is not installed")
    return {
        **PRESETS[preset],
        **TINY,
        "hidden": 16,
        "preset": preset,
        "replay_size": 200,
        "eval_max_steps": 50,
    }


def _run(run_dir, total, **kw):
    trainer = QWRTrainer(QWRConfig(**{**TINY, **kw, "total_steps": total, "run_dir": str(run_dir)}))
    trainer.train()
    return trainer


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "env,algo,precision",
    [
        ("BitFlip-8", "qwr-lse", "fp32"),
        ("Pendulum-v1", "qwr-lse", "fp32"),
        ("CartPole-v1", "awr", "fp32"),
        ("Pendulum-v1", "qwr-lse", "bf16"),
    ],
)
def test_resume_equals_uninterrupted(tmp_path, env, algo, precision):
    _check_resume_equals_uninterrupted(tmp_path, env=env, algo=algo, seed=3, precision=precision)


@pytest.mark.parametrize(
    "preset,env,algo",
    [("mujoco", "HalfCheetah-v5", "qwr-lse"), ("minatar", "MinAtar/Freeway", "awr")],
)
def test_resume_equals_uninterrupted_on_a_preset(tmp_path, preset, env, algo):
    """The issue's "a short MuJoCo run", and the MinAtar preset that docs/results.md resumed."""
    kw = _tiny_preset(preset)
    _check_resume_equals_uninterrupted(tmp_path, **kw, env=env, algo=algo, seed=1)


def _check_resume_equals_uninterrupted(tmp_path, **kw):
    """120 steps straight vs 80 steps, then ``QWRTrainer.resumed`` to 120: same networks, same
    optimiser step count, same eval.csv (3 evaluations, none duplicated by the resume)."""
    straight = _run(tmp_path / "a", 120, **kw)
    _run(tmp_path / "b", 80, **kw)
    resumed = QWRTrainer.resumed(str(tmp_path / "b"), total_steps=120)
    assert resumed.global_step == 80
    resumed.train()
    for name in ("policy", "critic", "target"):
        assert _equal_state(getattr(straight, name), getattr(resumed, name)), name
    assert (
        straight.opt_q.state_dict()["state"][0]["step"]
        == resumed.opt_q.state_dict()["state"][0]["step"]
    )
    eval_a = (tmp_path / "a" / "eval.csv").read_text()
    assert eval_a == (tmp_path / "b" / "eval.csv").read_text()
    assert eval_a.count("\n") == 4  # header + 3 evaluations, none duplicated by the resume


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    _run(tmp_path, 40, env="BitFlip-8")
    path = latest_checkpoint(tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        QWRTrainer.resumed(str(tmp_path))
    assert qwr_train_main(["--resume", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qwr-train: error: checkpoint") and err.count("\n") == 1


def test_cli_contract(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = [
        "--env",
        "BitFlip-8",
        "--algo",
        "qwr-max",
        "--total-steps",
        "80",
        "--seed",
        "1",
        "--run-dir",
        str(run_dir),
        "--preset",
        "bitflip",
        "--steps-per-epoch",
        "40",
        "--critic-steps",
        "3",
        "--actor-steps",
        "3",
        "--hidden",
        "16",
        "--eval-every",
        "40",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert qwr_train_main(argv) == 0
    assert "curve.png" in capsys.readouterr().out
    files = set(os.listdir(run_dir))
    assert {"config.json", "eval.csv", "train.csv", "curve.png", "ckpt_80.pt", "tb"} <= files
    with open(run_dir / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [40, 80]
    assert {"step", "return_mean", "return_std"} <= set(rows[0])
    cfg = QWRTrainer.resumed(str(run_dir)).cfg
    assert cfg.algo == "qwr-max" and cfg.batch_size == PRESETS["bitflip"]["batch_size"]
    assert cfg.hidden == 16  # an explicit flag wins over the preset
    # the same command again must not clobber the finished run ...
    assert qwr_train_main(argv) == 2
    err = capsys.readouterr().err
    assert f"--run-dir {run_dir} holds the checkpoints of another run" in err
    assert err.count("\n") == 1
    assert os.path.exists(run_dir / "ckpt_80.pt")
    # ... unless asked: --overwrite starts afresh and drops the old run's checkpoints
    assert qwr_train_main([*argv[:5], "40", *argv[6:], "--overwrite"]) == 0
    assert sorted(f for f in os.listdir(run_dir) if f.startswith("ckpt_")) == ["ckpt_40.pt"]


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--env", "BitFlip-8", "--total-steps", "0"], "--total-steps must be >= 1"),
        (["--env", "NoSuchEnv-v9"], "--env 'NoSuchEnv-v9'"),
        (["--preset", "nope"], "--preset must be one of"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, argv, match):
    assert qwr_train_main([*argv, "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_unknown_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        qwr_train_main(["--no-such-flag", "3"])
    assert e.value.code == 2


@pytest.mark.parametrize("algo", ["qwr-avg", "awr"])
@pytest.mark.parametrize("env", ["BitFlip-8", "Pendulum-v1"])
def test_algorithms_run(tmp_path, algo, env):
    trainer = _run(tmp_path, 40, env=env, algo=algo)
    with open(tmp_path / "train.csv") as f:
        row = next(csv.DictReader(f))
    assert np.isfinite(float(row["critic_loss"])) and np.isfinite(float(row["actor_loss"]))
    assert trainer.global_step == 40


@pytest.mark.parametrize("env,algo", [("Pendulum-v1", "qwr-lse"), ("CartPole-v1", "awr")])
def test_bf16_losses_close_to_fp32(tmp_path, env, algo):
    """precision=bf16 rounds the products (the losses differ from fp32) but only by bf16's
    ~1e-2 relative error; Q, V and the policy outputs come out fp32."""
    trainer = QWRTrainer(
        QWRConfig(**{**TINY, "env": env, "algo": algo, "run_dir": str(tmp_path)}, precision="bf16")
    )
    trainer.collect(200)
    batch = trainer.sample_batch()
    losses = {}
    for precision in ("fp32", "bf16"):
        with trainer.autocast(enabled=precision == "bf16"):  # the trainer's own region
            torch.manual_seed(0)  # the losses sample from the default generator
            critic = trainer.critic_loss(batch)
            torch.manual_seed(0)
            actor = trainer.actor_loss(batch)
            if trainer.awr:
                assert trainer.critic(batch.obs).dtype == torch.float32
            else:
                assert trainer.critic(batch.obs, batch.action).dtype == torch.float32
            assert all(t.dtype == torch.float32 for t in trainer.policy.dist(batch.obs)[1:])
        losses[precision] = (critic["critic_loss"].item(), actor["actor_loss"].item())
    for fp32, bf16 in zip(losses["fp32"], losses["bf16"], strict=True):
        assert fp32 != bf16
        assert bf16 == pytest.approx(fp32, rel=5e-2, abs=1e-3)


def test_bf16_warns_on_a_cpu_that_emulates_it(tmp_path, cpu_bf16_support):
    """--precision bf16 on a CPU without AVX512-BF16 or AMX (10-60x slower there) warns, naming
    the flag; on a CPU with either, and at fp32, it does not."""

    def bf16_warnings(name: str, precision: str) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            QWRTrainer(QWRConfig(**TINY, run_dir=str(tmp_path / name), precision=precision))
        return [str(w.message) for w in caught if "AVX512-BF16" in str(w.message)]

    cpu_bf16_support(avx512_bf16=False, amx=False)
    (message,) = bf16_warnings("emulated", "bf16")
    assert message.startswith("--precision bf16: this CPU has neither AVX512-BF16 nor AMX")
    assert bf16_warnings("fp32", "fp32") == []
    cpu_bf16_support(avx512_bf16=True, amx=False)
    assert bf16_warnings("native", "bf16") == []


def test_bf16_trains_on_a_conv_torso(tmp_path):
    """The MinAtar preset's conv torso and discrete head under bf16 autocast."""
    kw = _tiny_preset("minatar")
    trainer = _run(tmp_path, 40, **kw, env="MinAtar/Breakout", precision="bf16")
    with open(tmp_path / "train.csv") as f:
        row = next(csv.DictReader(f))
    assert np.isfinite(float(row["critic_loss"])) and np.isfinite(float(row["actor_loss"]))
    assert trainer.global_step == 40


@pytest.mark.parametrize("preset", ["bitflip", "mujoco", "minatar", "atari"])
def test_every_preset_smoke(tmp_path, preset):
    kw = _tiny_preset(preset)
    trainer = QWRTrainer(
        QWRConfig(**kw, env=FAMILY_ENV[preset], total_steps=40, run_dir=str(tmp_path))
    )
    trainer.train()
    assert os.path.exists(tmp_path / "curve.png")


def test_next_step_autoreset_never_stores_the_reset_transition(tmp_path):
    trainer = QWRTrainer(QWRConfig(**{**TINY, "env": "CartPole-v1", "run_dir": str(tmp_path)}))
    env = gym.make_vec(
        "CartPole-v1",
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
    )
    trainer.collector = Collector(env, seed=0, obs_to_tensor=trainer.obs_tensor, norm=trainer.norm)
    assert trainer.collector.mode == AutoresetMode.NEXT_STEP
    trainer.collect(400)
    r = trainer.replay
    n = r.size
    done = (r.terminal | r.truncated)[:n]
    valid = r.valid[:n]
    assert done.any()
    assert torch.equal(valid[1:], ~done[:-1])  # exactly the step after an episode end is invalid
    cont = valid[:-1] & ~done[:-1]  # s_{t+1} is stored at t+1: it must equal the bootstrap obs
    torch.testing.assert_close(r.next_obs[: n - 1][cont], r.obs[1:n][cont])
    after = valid[1:] & done[:-1]
    assert after.sum() == 0


def test_offline_dataset_round_trip(tmp_path, capsys):
    out = tmp_path / "data.npz"
    assert (
        qwr_collect_main(
            [
                "--env",
                "Pendulum-v1",
                "--steps",
                "120",
                "--num-envs",
                "2",
                "--out",
                str(out),
                "--seed",
                "0",
            ]
        )
        == 0
    )
    with np.load(out) as d:
        assert int(d["schema_version"]) == 1 and str(d["env_id"]) == "Pendulum-v1"
        assert d["obs"].shape == (120, 3) and d["action"].shape == (120, 1)
        assert d["truncated"][59] and d["truncated"][119]  # each env chunk ends a slice
    trainer = _run(tmp_path / "off", 80, env="Pendulum-v1", dataset=str(out))
    assert trainer.env is None and len(trainer.replay) == 120
    with np.load(out) as d:
        arrays = dict(d)
    arrays["schema_version"] = np.int64(99)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="schema_version 99"):
        _run(tmp_path / "bad", 40, env="Pendulum-v1", dataset=str(tmp_path / "bad.npz"))


def test_collect_from_checkpoint_stores_mu(tmp_path):
    _run(tmp_path / "run", 40, env="BitFlip-8")
    path = collect_dataset(
        CollectConfig(
            env="BitFlip-8",
            steps=40,
            out=str(tmp_path / "d.npz"),
            policy="checkpoint",
            checkpoint=str(tmp_path / "run"),
        )
    )
    with np.load(path) as d:
        assert d["mu"].shape == (40, 8) and d["next_mu"].shape == (40, 8)
        assert str(d["policy"]) == "checkpoint"


def test_short_bitflip_run_beats_random(tmp_path):
    # Random flips on BitFlip-8 from random starts return 0 in expectation (std ~2.2 per episode).
    kw = {
        **PRESETS["bitflip"],
        "progress": False,
        "tensorboard": False,
        "hidden": 64,
        "batch_size": 64,
        "steps_per_epoch": 200,
        "critic_steps": 200,
        "actor_steps": 200,
        "eval_every": 1200,
        "eval_episodes": 64,
    }
    last = QWRTrainer(
        QWRConfig(**kw, env="BitFlip-8", total_steps=1200, run_dir=str(tmp_path))
    ).train()
    assert last["return_mean"] > 1.5, last


@pytest.mark.parametrize("env,algo", [("Pendulum-v1", "qwr-lse"), ("CartPole-v1", "awr")])
def test_shared_first_layer(tmp_path, env, algo):
    straight = _run(tmp_path / "a", 120, env=env, algo=algo, seed=1, shared_first_layer=True)
    first = straight.policy.body[0]
    assert straight.critic.body[0] is first
    if algo != "awr":
        assert straight.target.body[0] is not first  # the target keeps its own copy
    # both losses train it: it moved away from its initial value under either optimiser alone
    fresh = QWRTrainer(
        QWRConfig(
            **{
                **TINY,
                "env": env,
                "algo": algo,
                "seed": 1,
                "shared_first_layer": True,
                "run_dir": str(tmp_path / "c"),
            }
        )
    )
    assert not torch.equal(fresh.policy.body[0].weight, first.weight)
    # and a resumed run equals the uninterrupted one, the sharing included
    _run(tmp_path / "b", 80, env=env, algo=algo, seed=1, shared_first_layer=True)
    resumed = QWRTrainer.resumed(str(tmp_path / "b"), total_steps=120)
    resumed.train()
    assert resumed.critic.body[0] is resumed.policy.body[0]
    for name in ("policy", "critic", "target"):
        assert _equal_state(getattr(straight, name), getattr(resumed, name)), name


@pytest.mark.parametrize(
    "env,algo", [("Pendulum-v1", "qwr-lse"), ("CartPole-v1", "qwr-max"), ("CartPole-v1", "awr")]
)
def test_update_steps_read_no_tensor_value_on_the_host(tmp_path, monkeypatch, env, algo):
    """On CUDA a host read (``.item()``, ``bool(t)``, ...) stalls the stream and breaks graph
    capture. Here every tensor's value checks follow the CUDA rule (on unless the update skips
    them), and every host read raises: the update's steps must run through."""
    import sys

    from qwr_fast.kernels import _common

    trainer = QWRTrainer(
        QWRConfig(**{**TINY, "env": env, "algo": algo, "total_steps": 40, "run_dir": str(tmp_path)})
    )
    trainer.collect(40)
    host_rule = _common.value_checks_enabled
    for module in list(sys.modules.values()):
        if getattr(module, "value_checks_enabled", None) is host_rule:
            monkeypatch.setattr(
                module, "value_checks_enabled", lambda device: _common._value_checks_on_cuda
            )

    def host_read(name):
        def read(self, *args, **kwargs):
            raise AssertionError(f"host read in the update: Tensor.{name}")

        return read

    for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, host_read(name))
    # and the reads that happen below Python (a tensor taken as a Scalar argument, ...): every
    # one goes through aten::_local_scalar_dense
    with NoHostReads():
        stats = trainer.update_steps()
    if algo != "awr":  # (AWR's steps reach no value-reading check)
        # The rule is live: outside the skip, a fused op's value check reads the host and trips.
        with pytest.raises(AssertionError, match="host read"):
            trainer.critic_fn(trainer.sample_batch())
    monkeypatch.undo()
    assert set(stats) >= {"critic_loss", "actor_loss"}
    assert all(bool(torch.isfinite(v).all()) for v in stats.values())


class NoHostReads(TorchDispatchMode):
    """Raises on every read of a tensor's value into a host scalar (``_local_scalar_dense``,
    what ``.item()``, ``bool(t)`` and a tensor passed as a Scalar all dispatch to)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            raise AssertionError(f"host read in the update: {func}")
        return func(*args, **(kwargs or {}))


def test_bad_dataset_files_are_one_line_errors(tmp_path, capsys):
    import numpy as np

    from qwr_fast.cli.train import qwr_train

    good = tmp_path / "good.npz"
    np.savez(good, schema_version=np.int64(1), reward=np.zeros(100))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-40])
    text = tmp_path / "text.npz"
    text.write_text("not a dataset\n")
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    for path in (truncated, text, npy, tmp_path / "missing.npz"):
        argv = ["--env", "Pendulum-v1", "--dataset", str(path), "--run-dir", str(tmp_path / "r")]
        assert qwr_train([*argv, "--no-progress"]) == 2, path
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--dataset {path}" in err[0], err


def test_tuple_observation_space_is_a_one_line_error(tmp_path, capsys):
    from qwr_fast.cli.train import aql_train, qwr_train

    for entry in (qwr_train, aql_train):
        argv = ["--env", "Blackjack-v1", "--run-dir", str(tmp_path / entry.__name__)]
        assert entry([*argv, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Tuple observation space" in err[0], err


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path, capsys):
    # ckpt_40 and ckpt_80; ckpt_80 truncated: the resume starts from ckpt_40, says so in one
    # line, and ends exactly where an uninterrupted run does.
    _run(tmp_path / "a", 120, env="BitFlip-8")
    _run(tmp_path / "b", 80, env="BitFlip-8")
    newest = tmp_path / "b" / "ckpt_80.pt"
    newest.write_bytes(newest.read_bytes()[:-100])
    trainer = QWRTrainer.resumed(str(tmp_path / "b"), total_steps=120)
    assert trainer.global_step == 40
    err = capsys.readouterr().err
    assert "ckpt_80.pt is truncated or corrupt" in err and "ckpt_40.pt" in err
    trainer.train()
    assert (tmp_path / "a" / "eval.csv").read_text() == (tmp_path / "b" / "eval.csv").read_text()


def test_collect_writes_exactly_out_even_without_the_npz_suffix(tmp_path):
    path = collect_dataset(CollectConfig(env="BitFlip-8", steps=20, out=str(tmp_path / "data")))
    assert path == str(tmp_path / "data") and os.listdir(tmp_path) == ["data"]  # no temp left
    assert load_dataset(path, "BitFlip-8")["reward"].shape == (20,)


def test_reference_parameterisation(tmp_path):
    """--policy-mean linear (unclipped samples, the replay keeps them, the env gets them
    clipped), --init-scale (near-zero output layers), --adam-eps, --norm-clip 0 / --norm-eps /
    --norm-max-count:
    the reference's choices, each reaching the part it names."""
    trainer = QWRTrainer(
        QWRConfig(
            **{**TINY, "env": "Pendulum-v1", "run_dir": str(tmp_path)},
            policy_mean="linear",
            init_scale=0.01,
            adam_eps=1e-5,
            norm_clip=0.0,
            norm_eps=1e-5,
            norm_max_count=20,
        )
    )
    assert float(trainer.policy.head.weight.detach().abs().max()) <= 0.01
    assert float(trainer.critic.out.weight.detach().abs().max()) <= 0.01
    assert float(trainer.target.out.weight.abs().max()) <= 0.01
    assert trainer.opt_q.param_groups[0]["eps"] == 1e-5 == trainer.opt_pi.param_groups[0]["eps"]
    assert (trainer.norm.clip, trainer.norm.eps) == (0.0, 1e-5)
    x = torch.full((1, 3), 1e6)  # far outside the statistics: unclipped
    assert float(trainer.norm(x).abs().max()) > 10.0
    with torch.no_grad():
        trainer.policy.head.bias.fill_(0.9)  # mean ~0.9, std 0.4: many samples above 1
    assert not trainer.clip_samples
    trainer.collect(200)
    stored = trainer.replay.action[: trainer.replay.size]
    assert float(stored.max()) > 1.0  # the replay keeps the unclipped action
    assert float(trainer.norm.count) == 20  # 2 envs a step: full after 10 steps, then frozen
    env_actions = trainer.to_env(stored.reshape(-1, 1))
    assert float(np.abs(env_actions).max()) <= 2.0  # Pendulum's bound: clipped on the way
    stats = trainer.update()
    assert all(np.isfinite(v) for v in stats.values())
    # and the default keeps the tanh mean with clipped samples
    default = QWRTrainer(
        QWRConfig(**{**TINY, "env": "Pendulum-v1", "run_dir": str(tmp_path / "d")})
    )
    assert default.clip_samples and not default.policy.linear_mean

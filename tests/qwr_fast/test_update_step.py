"""The whole-step update (qwr_fast.trainers.step): compiled equals eager, --cuda-graphs is
refused off CUDA, and the replay's packed host-to-device write stores what the plain one does."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from qwr_fast.cli.train import qwr_train
from qwr_fast.data.replay import Replay
from qwr_fast.kernels import skip_value_checks
from qwr_fast.trainers.aql import AQLConfig, AQLTrainer
from qwr_fast.trainers.dqn import DQNConfig, DQNTrainer
from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer
from qwr_fast.trainers.step import UpdateStep, trainer_generator_as_default

UPDATES = 20
COMMON = dict(progress=False, hidden=16, eval_episodes=2)


def _qwr(tmp_path, env, algo, compile):
    cfg = QWRConfig(
        **COMMON,
        env=env,
        algo=algo,
        num_envs=2,
        batch_size=16,
        target_every=3,  # several target syncs within the compared steps
        tensorboard=False,
        compile=compile,
        run_dir=str(tmp_path / f"qwr_{compile}"),
    )
    trainer = QWRTrainer(cfg)
    trainer.collect(200)
    # the trainer's two step functions, alternated: UPDATES steps in all
    return (
        trainer,
        [trainer.critic_update, trainer.actor_update] * (UPDATES // 2),
        [
            trainer.policy,
            trainer.critic,
            trainer.target,
        ],
    )


def _aql(tmp_path, compile):
    cfg = AQLConfig(
        **COMMON,
        env="BitFlipSubset-6",
        num_envs=2,
        batch_size=8,
        proposal_width=8,
        num_proposal=5,
        num_uniform=11,
        entropy_samples=3,
        target_every=3,  # several target syncs within the compared steps
        tensorboard=False,
        compile=compile,
        run_dir=str(tmp_path / f"aql_{compile}"),
    )
    trainer = AQLTrainer(cfg)
    trainer.collect(100)
    return trainer, [trainer.update_fn] * UPDATES, [trainer.net, trainer.target]


def _dqn(tmp_path, compile):
    cfg = DQNConfig(
        **COMMON,
        env="BitFlip-6",
        num_envs=2,
        batch_size=8,
        target_every=3,
        compile=compile,
        run_dir=str(tmp_path / f"dqn_{compile}"),
    )
    trainer = DQNTrainer(cfg)
    trainer.collect(100)
    return trainer, [trainer.update_fn] * UPDATES, [trainer.q, trainer.target]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p, c: _qwr(p, "Pendulum-v1", "qwr-lse", c), id="qwr-continuous"),
        pytest.param(lambda p, c: _qwr(p, "CartPole-v1", "qwr-max", c), id="qwr-discrete"),
        pytest.param(_aql, id="aql"),
        pytest.param(_dqn, id="dqn"),
    ],
)
def test_compiled_whole_step_equals_eager(tmp_path, make):
    """--compile compiles each whole update step (sample, losses, backward, clipping,
    optimiser, target sync); over 20 steps it gives eager's losses and parameters within fp32
    tolerance, and leaves the trainer's generator where eager leaves it."""
    runs = {}
    for compile in (False, True):
        trainer, steps, modules = make(tmp_path, compile)
        assert all(isinstance(s, UpdateStep) for s in steps)
        assert {s.mode for s in steps} == {"compile" if compile else "eager"}
        initial = [p.detach().clone() for m in modules for p in m.parameters()]
        losses = []
        with trainer_generator_as_default(trainer.gen):
            for step in steps:
                losses.append({k: v.clone() for k, v in step().items()})
        params = [p.detach().clone() for m in modules for p in m.parameters()]
        # the steps trained: parameters moved from their initial values
        assert not all(torch.equal(a, b) for a, b in zip(initial, params, strict=True))
        runs[compile] = (losses, params, trainer.gen.get_state())
    (eager_losses, eager_params, eager_gen), (comp_losses, comp_params, comp_gen) = runs.values()
    assert len(eager_losses) == UPDATES
    for want, got in zip(eager_losses, comp_losses, strict=True):
        assert want.keys() == got.keys()
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=k)
    for want, got in zip(eager_params, comp_params, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert torch.equal(eager_gen, comp_gen)


def test_cuda_graphs_is_refused_on_cpu_in_one_line(tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", "--cuda-graphs", "--device", "cpu"]  # (CPU on any machine)
    argv += ["--run-dir", str(tmp_path / "r")]
    assert qwr_train(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cuda-graphs needs a CUDA device" in err[0]


@pytest.mark.parametrize("flag", ["--compile", "--cuda-graphs"])
def test_step_flags_refuse_several_learners(flag):
    """The whole-step flags are single-learner (the DDP hooks run in backward)."""
    assert flag.lstrip("-").replace("-", "_") in QWRTrainer.SINGLE_LEARNER_FLAGS
    assert "compile" in AQLTrainer.SINGLE_LEARNER_FLAGS
    assert "compile" in DQNTrainer.SINGLE_LEARNER_FLAGS


@pytest.mark.parametrize("cfg_cls", [AQLConfig, DQNConfig])
def test_compile_with_prioritized_replay_is_refused(tmp_path, cfg_cls):
    with pytest.raises(ValueError, match="--compile.*--prioritized"):
        cfg_cls(compile=True, prioritized=True, run_dir=str(tmp_path)).validate()


def test_packed_host_writes_store_what_plain_writes_store():
    """On CUDA a step's host-side fields go to the device in one packed copy; on CPU the same
    packing (forced) must store exactly what the field-by-field write stores, every dtype and
    alignment included (uint8 pixels of odd size, int64 actions, bool flags)."""
    rng = np.random.default_rng(0)
    E, obs_shape, mu_dim = 3, (3, 5), 3  # 15-byte observations: the fields after them realign
    replays = [
        Replay(20, E, obs_shape, mu_dim, action_dtype=torch.int64, obs_dtype=torch.uint8, **kw)
        for kw in ({"pack_host_writes": False}, {"pack_host_writes": True})
    ]
    for _ in range(9):  # wraps around the 6-row replay
        step = dict(
            obs=torch.as_tensor(rng.integers(0, 256, (E, *obs_shape)), dtype=torch.uint8),
            mu=torch.as_tensor(rng.standard_normal((E, mu_dim)), dtype=torch.float32),
            action=torch.as_tensor(rng.integers(0, 4, E)),
            reward=rng.standard_normal(E).astype(np.float32),
            terminal=rng.random(E) < 0.3,
            truncated=rng.random(E) < 0.3,
            next_obs=rng.integers(0, 256, (E, *obs_shape)).astype(np.uint8),
            next_mu=rng.standard_normal((E, mu_dim)).astype(np.float32),
        )
        valid = torch.as_tensor(rng.random(E) < 0.8)
        for replay in replays:
            replay.add(**step, valid=valid)
    plain, packed = replays
    for name in Replay._FIELDS:
        assert torch.equal(getattr(plain, name), getattr(packed, name)), name
    assert (plain.pos, plain.size, plain.all_valid) == (packed.pos, packed.size, packed.all_valid)
    assert plain._num_invalid == int(plain.valid.logical_not().sum())  # host count == device


def test_replay_counters_live_on_the_device():
    """Sampling computes with ``size_t`` / ``oldest_t`` (no host int inside a captured step):
    they follow every write, and a sample never reaches past the newest step."""
    replay = Replay(8, 2, (1,), 1)
    for t in range(11):  # 4 rows per env: wraps
        x = torch.full((2, 1), float(t))
        replay.add(x, x, x[:, 0], x[:, 0], x[:, 0] < 0, x[:, 0] < 0, x + 1, x)
        assert int(replay.size_t) == replay.size
        assert int(replay.oldest_t) == (replay.pos - replay.size) % replay.length
    gen = torch.Generator().manual_seed(0)
    with trainer_generator_as_default(gen):
        b = replay.sample(256, 3)
    assert set(b.obs.flatten().tolist()) == {7.0, 8.0, 9.0, 10.0}  # every stored start drawn
    assert bool((b.next_obs[:, :, 0] <= 11.0).all())
    assert bool(b.stop[b.obs[:, 0] == 10.0, 0].all())  # the newest step stops its slice


@pytest.mark.parametrize("make", [pytest.param(_aql, id="aql"), pytest.param(_dqn, id="dqn")])
def test_aql_and_dqn_steps_read_no_value_on_the_host(tmp_path, monkeypatch, make):
    """As qwr-train's (tests/qwr_fast/test_qwr_trainer.py): with the fused ops' value checks
    following the CUDA rule (on unless the update skips them), the update steps, sampling and
    target sync included, never read a tensor value into a host scalar."""
    import sys

    from qwr_fast.kernels import _common
    from tests.qwr_fast.test_qwr_trainer import NoHostReads

    trainer, steps, _ = make(tmp_path, False)
    host_rule = _common.value_checks_enabled
    for module in list(sys.modules.values()):
        if getattr(module, "value_checks_enabled", None) is host_rule:
            monkeypatch.setattr(
                module, "value_checks_enabled", lambda device: _common._value_checks_on_cuda
            )
    # the steps as update() (aql) / learn() (dqn) run them, without the one read after them
    skip = skip_value_checks() if isinstance(trainer, AQLTrainer) else contextlib.nullcontext()
    with skip, trainer_generator_as_default(trainer.gen), NoHostReads():
        outs = [step() for step in steps[:5]]
    assert all(bool(torch.isfinite(v).all()) for out in outs for v in out.values())
    # the rule is live: a fused op's value check outside the skip reads the host and trips
    if isinstance(trainer, AQLTrainer):
        gen = trainer_generator_as_default(trainer.gen)
        with pytest.raises(AssertionError, match="host read"), NoHostReads(), gen:
            trainer.update_fn()

"""Scale-out on torch.distributed (gloo, CPU): the data-parallel gradient equals the
single-process one, a 2-rank ``qwr-train`` keeps its ranks identical and is reproducible and
exactly resumable (also across two ``torchrun`` launchers as two nodes, and after a worker is
killed under ``--max-restarts``), so are ``aql-train`` (learners, actor) and ``dqn-train``
(learners, actor) and ``ppo-train``, the search farm writes the single-process CSV, and bad
configurations fail before any work."""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from qwr_fast.checkpoint import load_checkpoint
from qwr_fast.data.replay import ReplayBatch
from qwr_fast.distributed import World, data_parallel, exit_process
from qwr_fast.nn.policy import CategoricalPolicy
from qwr_fast.nn.sampled_q import SampledQ
from qwr_fast.nn.torsos import RunningNorm
from qwr_fast.objectives.qwr import qwr_actor_loss, qwr_critic_loss

B, T, D, K = 8, 3, 5, 4


def _nets():
    torch.manual_seed(1)
    q = SampledQ(D, num_actions=K, hidden=16)
    return q, copy.deepcopy(q), CategoricalPolicy((D,), K, hidden=16)


def _batch() -> ReplayBatch:
    g = torch.Generator().manual_seed(2)
    # next_mu puts all mass on action 0: the sampled next actions are the same whatever the
    # generator, so the loss of a half batch is exactly that half's share of the full loss
    next_mu = torch.full((B, T, K), -1e4)
    next_mu[..., 0] = 0.0
    return ReplayBatch(
        obs=torch.randn(B, D, generator=g),
        mu=torch.randn(B, K, generator=g),
        action=torch.randint(0, K, (B,), generator=g),
        reward=torch.randn(B, T, generator=g),
        terminal=torch.rand(B, T, generator=g) < 0.2,
        truncated=torch.zeros(B, T, dtype=torch.bool),
        stop=torch.zeros(B, T, dtype=torch.bool),
        next_obs=torch.randn(B, T, D, generator=g),
        next_mu=next_mu,
    )


def _half(batch: ReplayBatch, rank: int) -> ReplayBatch:
    h = slice(rank * B // 2, (rank + 1) * B // 2)
    return ReplayBatch(**{k: getattr(batch, k)[h] for k in batch.__dataclass_fields__})


def _grads(q, target, policy, batch, wrap=None):
    def critic(b):
        return qwr_critic_loss(q, target, b, kind="categorical", n=3, normalize_q=False)

    def actor(b):
        return qwr_actor_loss(policy, target, b, normalize=False, enumerate_actions=True)

    critic_fn = critic if wrap is None else wrap(q, critic)
    actor_fn = actor if wrap is None else wrap(policy, actor)
    critic_fn(batch)["critic_loss"].backward()
    actor_fn(batch)["actor_loss"].backward()
    return [p.grad.clone() for p in [*q.parameters(), *policy.parameters()]]


def _rank_grads(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    q, target, policy = _nets()
    grads = _grads(
        q, target, policy, _half(_batch(), rank), wrap=lambda n, f: data_parallel(n, f, q_dev)
    )
    torch.save(grads, f"{out}.{rank}")
    exit_process(0)  # as every entry point ends: gloo's teardown can abort (see below)


q_dev = torch.device("cpu")


def test_two_ranks_half_batches_give_the_full_batch_gradient(tmp_path):
    expected = _grads(*_nets(), _batch())
    out = str(tmp_path / "grads")
    mp.spawn(_rank_grads, args=(f"file://{tmp_path / 'rdzv'}", out), nprocs=2)
    for rank in range(2):
        got = torch.load(f"{out}.{rank}", weights_only=True)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert e.abs().sum() > 0
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def _rank_norm(rank: int, init: str, out: str) -> None:
    from qwr_fast.distributed import NormSync

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    norm = RunningNorm((3,))
    norm.update(torch.arange(12.0).view(4, 3))  # the state before: the same on both ranks
    sync = NormSync(norm, World(rank, 2))
    sync.begin()
    g = torch.Generator().manual_seed(10 + rank)
    for _ in range(3):  # this rank's own observations, in batches
        sync.update(torch.randn(5, 3, generator=g) * (rank + 1) + rank)
    sync.end()
    torch.save(norm.state_dict(), f"{out}.{rank}")
    exit_process(0)


def test_norm_sync_merges_every_ranks_observations(tmp_path):
    out = str(tmp_path / "norm")
    mp.spawn(_rank_norm, args=(f"file://{tmp_path / 'rdzv'}", out), nprocs=2)
    seen = [torch.arange(12.0).view(4, 3)]
    for rank in range(2):
        g = torch.Generator().manual_seed(10 + rank)
        seen += [torch.randn(5, 3, generator=g) * (rank + 1) + rank for _ in range(3)]
    x = torch.cat(seen).double()
    s0 = torch.load(f"{out}.0", weights_only=True)
    s1 = torch.load(f"{out}.1", weights_only=True)
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k  # identical on both ranks
    assert s0["count"] == len(x)
    torch.testing.assert_close(s0["mean"], x.mean(0))
    torch.testing.assert_close(s0["var"], x.var(0, unbiased=False))


# ------------------------------------------------------------------ torchrun end to end
TRAIN = [
    "--env", "Pendulum-v1", "--num-envs", "2", "--steps-per-epoch", "200", "--critic-steps", "4",
    "--actor-steps", "4", "--eval-every", "400", "--eval-episodes", "2", "--checkpoint-every",
    "400", "--batch-size", "32", "--replay-size", "2000", "--hidden", "32", "--no-progress",
    "--no-tensorboard", "--checkpoint-minutes", "0",
]  # fmt: skip


def _torchrun(args: list[str], *, nproc: int = 2, launcher: list[str] | None = None, **kw):
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    cmd += launcher or ["--standalone", f"--nproc-per-node={nproc}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QWR_FAST_DIST_TIMEOUT_S": "120"}
    kw.setdefault("timeout", 600)  # a hang fails the test instead of the whole CI run
    return subprocess.run(
        [*cmd, "-m", "qwr_fast.cli", *args], capture_output=True, text=True, env=env, **kw
    )


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _rows(path, drop=("steps_per_s", "wall_s")):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """One uninterrupted 2-rank qwr-train run of 1600 steps."""
    run = tmp_path_factory.mktemp("ddp") / "a"
    _ok(_torchrun(["qwr-train", *TRAIN, "--total-steps", "1600", "--run-dir", str(run)]))
    return run


def test_two_rank_run_keeps_ranks_identical(two_rank_run):
    run = two_rank_run
    config = json.loads((run / "config.json").read_text())
    assert config["world"] == {"world_size": 2, "roles": ["learner", "learner"]}
    assert config["num_envs"] == 2 and config["batch_size"] == 32  # global values
    main = load_checkpoint(run / "ckpt_1600.pt")
    shard = load_checkpoint(run / "shards" / "rank1" / "ckpt_1600.pt")
    assert main["world_size"] == shard["world_size"] == 2
    for part in ("policy", "critic", "target", "norm"):
        for name, value in main[part].items():
            assert torch.equal(value, shard[part][name]), (part, name)
    for part in ("opt_pi", "opt_q"):
        for i, state in main[part]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, shard[part]["state"][i][name]), (part, i, name)
    assert main["norm"]["count"] == 1600  # every rank's observations, once
    # each rank its own envs and replay shard (1 env, 1000 slots each)
    assert main["replay"]["num_envs"] == shard["replay"]["num_envs"] == 1
    assert not torch.equal(main["replay"]["obs"], shard["replay"]["obs"])
    assert [r["step"] for r in _rows(run / "eval.csv")] == ["400", "800", "1200", "1600"]
    assert sorted(os.listdir(run / "shards" / "rank1")) == ["ckpt_1200.pt", "ckpt_1600.pt"]


def test_two_rank_run_is_reproducible_and_resumes_exactly(two_rank_run, tmp_path):
    again, split = tmp_path / "again", tmp_path / "split"
    _ok(_torchrun(["qwr-train", *TRAIN, "--total-steps", "1600", "--run-dir", str(again)]))
    assert _rows(again / "eval.csv") == _rows(two_rank_run / "eval.csv")
    _ok(_torchrun(["qwr-train", *TRAIN, "--total-steps", "800", "--run-dir", str(split)]))
    _ok(_torchrun(["qwr-train", "--resume", str(split), "--total-steps", "1600"]))
    assert _rows(split / "eval.csv") == _rows(two_rank_run / "eval.csv")
    assert _rows(split / "train.csv") == _rows(two_rank_run / "train.csv")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_launchers_as_two_nodes_run_the_same_experiment(two_rank_run, tmp_path):
    run, port = tmp_path / "nodes", _free_port()
    args = ["qwr-train", *TRAIN, "--total-steps", "1600", "--run-dir", str(run)]
    launch = ["--nnodes=2", "--nproc-per-node=1", "--master-addr=127.0.0.1"]
    launch.append(f"--master-port={port}")
    node1 = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "torch.distributed.run", *launch, "--node-rank=1", "-m"]
        + ["qwr_fast.cli", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", "QWR_FAST_DIST_TIMEOUT_S": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _ok(_torchrun(args, launcher=[*launch, "--node-rank=0"], timeout=300))
        out, err = node1.communicate(timeout=120)
        assert node1.returncode == 0, err[-3000:]
    finally:
        node1.kill()
    assert _rows(run / "eval.csv") == _rows(two_rank_run / "eval.csv")


def _launch(args: list[str], *launcher: str) -> subprocess.Popen:
    """torchrun in its own session (so that a failed test can kill its workers too)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QWR_FAST_DIST_TIMEOUT_S": "60"}
    return subprocess.Popen(  # noqa: S603
        [*cmd, *launcher, "-m", "qwr_fast.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _kill_a_worker_after_the_first_checkpoint(proc: subprocess.Popen, run) -> str:
    """SIGKILL rank 1's process once ``ckpt_400.pt`` exists; returns torchrun's stderr."""
    try:
        deadline = time.monotonic() + 120
        while not (run / "ckpt_400.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no first checkpoint"
            time.sleep(0.01)
        workers = sorted(_children(proc.pid))
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)
        return proc.communicate(timeout=240)[1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_killed_worker_restarts_and_the_run_finishes_from_its_checkpoint(two_rank_run, tmp_path):
    run = tmp_path / "restart"
    args = ["qwr-train", *TRAIN, "--total-steps", "1600", "--run-dir", str(run)]
    proc = _launch(args, "--max-restarts=1")
    err = _kill_a_worker_after_the_first_checkpoint(proc, run)
    assert proc.returncode == 0, err[-3000:]
    assert "exitcode: -9" in err  # torchrun reports the failure it restarted from
    # each evaluation exactly once, and the same as without the failure
    assert _rows(run / "eval.csv") == _rows(two_rank_run / "eval.csv")


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(name))
    return out


def test_a_dead_rank_takes_the_job_down_naming_it(tmp_path):
    run = tmp_path / "dead"
    proc = _launch(["qwr-train", *TRAIN, "--total-steps", "40000", "--run-dir", str(run)])
    err = _kill_a_worker_after_the_first_checkpoint(proc, run)
    assert proc.returncode != 0
    assert "rank      : 1" in err and "Signal 9 (SIGKILL)" in err, err[-3000:]


# ---------------------------------------------------------------- bad configurations
@pytest.mark.parametrize(
    ("prog", "world_size", "flags", "message"),
    [
        ("qwr_train", "2", ["--batch-size", "33"], "--batch-size 33 does not divide among 2"),
        ("qwr_train", "2", ["--num-envs", "3"], "--num-envs 3 does not divide among 2 ranks"),
        ("qwr_train", "2", ["--replay-size", "1001"], "--replay-size 1001 does not divide"),
        ("qwr_train", "2", ["--shared-first-layer"], "--shared-first-layer is not supported"),
        ("qwr_train", "2", ["--compile"], "--compile is not supported with several learners"),
        ("aql_train", "2", ["--steps-per-epoch", "201"], "--steps-per-epoch 201 does not divide"),
        ("dqn_train", "2", ["--buffer-size", "1001"], "--buffer-size 1001 does not divide"),
        ("dqn_train", "2", ["--batch-size", "33"], "--batch-size 33 does not divide among 2"),
        ("dqn_train", "2", ["--actors", "1", "--num-envs", "3"], "rows) 1000 must be a multiple"),
        ("dqn_train", "2", ["--actors", "1", "--total-steps", "1500"], "of dqn-train's epoch"),
        ("qwr_train", "2", ["--actors", "2"], "--actors 2 needs at least 3 processes"),
        ("qwr_train", "1", ["--actors", "1"], "--actors 1 needs at least 2 processes"),
        ("qwr_train", "3", ["--actors", "2", "--num-envs", "3"], "--num-envs 3 does not divide"),
        ("qwr_train", "2", ["--actors", "1", "--num-envs", "3"], "a multiple of --num-envs 3"),
        ("qwr_train", "2", ["--actors", "1", "--total-steps", "900"], "of --steps-per-epoch"),
        ("qwr_train", "3", ["--actors", "1"], "--actors 1 must be a multiple of the 2 learners"),
    ],
)
def test_bad_world_configurations_fail_before_any_work(
    tmp_path, monkeypatch, capsys, prog, world_size, flags, message
):
    from qwr_fast.cli import train

    monkeypatch.setenv("WORLD_SIZE", world_size)
    monkeypatch.setenv("RANK", "0")
    run = tmp_path / "bad"
    common = {"qwr_train": TRAIN, "aql_train": AQL[1:], "dqn_train": DQN[1:]}[prog]
    assert getattr(train, prog)([*common, "--run-dir", str(run), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not run.exists()


def test_resume_with_another_world_size_is_refused(two_rank_run, monkeypatch, capsys):
    from qwr_fast.cli.train import qwr_train

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert qwr_train(["--resume", str(two_rank_run), "--total-steps", "1200"]) == 2
    err = capsys.readouterr().err
    assert "trained by 2 process(es), not 1" in err and "--nproc-per-node=2" in err


def _rank_exit(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    dist.broadcast(torch.arange(4.0), src=0)  # a collective over a tensor Python drops at once
    exit_process(0)
    open(f"{out}.{rank}", "w").close()  # not reached: the rank ended in exit_process


def test_exit_process_ends_a_rank_and_is_a_no_op_alone(tmp_path):
    """A rank of a gloo group ends at exit_process with its status, skipping the teardown in
    which gloo's worker threads can abort a finished process (pytorch/pytorch#190489; seen as
    test_two_learners_and_two_actors failing under load); alone it returns the status."""
    assert exit_process(3) == 3
    out = str(tmp_path / "after")
    mp.spawn(_rank_exit, args=(f"file://{tmp_path / 'rdzv'}", out), nprocs=2)  # both exit 0
    assert not os.path.exists(f"{out}.0") and not os.path.exists(f"{out}.1")


def test_world_split():
    assert World(0, 4).split(256, "--batch-size") == 64
    with pytest.raises(ValueError, match="--num-envs 6 does not divide among 4 ranks"):
        World(1, 4).split(6, "--num-envs")
    assert World(0, 2).seed(7) == 7 and World(1, 2).seed(7) != 7


# ------------------------------------------------------------------- ppo-train, mode 1
PPO = ["--env", "BitFlip-8", "--preset", "bitflip", "--eval-every", "1024", "--checkpoint-every"]
PPO += ["1024", "--no-progress", "--no-tensorboard", "--checkpoint-minutes", "0", "--no-anneal-lr"]


def test_ppo_two_ranks_identical_reproducible_and_resumable(tmp_path):
    a, b, split = tmp_path / "a", tmp_path / "b", tmp_path / "split"
    for run in (a, b):
        _ok(_torchrun(["ppo-train", *PPO, "--total-steps", "2048", "--run-dir", str(run)]))
    assert _rows(a / "eval.csv") == _rows(b / "eval.csv")
    main = load_checkpoint(a / "checkpoint.pt")
    shard = load_checkpoint(a / "shards" / "rank1" / "ckpt_2048.pt")
    assert main["counters"]["global_step"] == 2048 and main["world_size"] == 2
    for name, value in main["agent"].items():
        assert torch.equal(value, shard["agent"][name]), name
    assert not torch.equal(torch.as_tensor(main["env_obs"]), torch.as_tensor(shard["env_obs"]))
    _ok(_torchrun(["ppo-train", *PPO, "--total-steps", "1024", "--run-dir", str(split)]))
    _ok(_torchrun(["ppo-train", "--resume", str(split), "--total-steps", "2048"]))
    assert _rows(split / "eval.csv") == _rows(a / "eval.csv")
    assert _rows(split / "train.csv") == _rows(a / "train.csv")


# ---------------------------------------------------------------------- search farm
SEARCH = ["--env", "BitFlip-4", "--planner", "sparta", "--budget-steps", "16", "--horizon", "2"]
SEARCH += ["--width", "4", "--no-progress", "--episodes", "5"]


def test_search_farm_writes_the_single_process_csv(blueprint, tmp_path):
    from qwr_fast.cli.search import main

    one, two = tmp_path / "one", tmp_path / "two"
    args = [*SEARCH, "--blueprint", blueprint]
    assert main([*args, "--out", f"{one}.csv", "--episodes-out", f"{one}_ep.csv"]) == 0
    _ok(_torchrun(["qwr-search", *args, "--out", f"{two}.csv", "--episodes-out", f"{two}_ep.csv"]))
    timing = ("seconds_per_move", "seconds")
    assert _rows(f"{two}.csv", timing) == _rows(f"{one}.csv", timing)
    episodes = _rows(f"{one}_ep.csv", timing)
    assert [r["episode"] for r in episodes] == ["0", "1", "2", "3", "4"]
    assert _rows(f"{two}_ep.csv", timing) == episodes


def test_episodes_out_resumes_a_long_evaluation(blueprint, tmp_path, capsys):
    from qwr_fast.cli.search import main

    args = [*SEARCH[:-2], "--blueprint", blueprint, "--progress"]
    whole, part = tmp_path / "whole.csv", tmp_path / "part.csv"
    assert main([*args, "--episodes", "4", "--episodes-out", str(whole)]) == 0
    assert main([*args, "--episodes", "2", "--episodes-out", str(part)]) == 0
    capsys.readouterr()
    assert main([*args, "--episodes", "4", "--episodes-out", str(part)]) == 0
    played = [line for line in capsys.readouterr().err.splitlines() if line.startswith("episode")]
    assert [line.split(":")[0] for line in played] == ["episode 2", "episode 3"]
    timing = ("seconds",)
    assert _rows(part, timing) == _rows(whole, timing)
    # another setting is another set of episodes in the same file
    assert main([*args, "--episodes", "1", "--horizon", "3", "--episodes-out", str(part)]) == 0
    assert len(_rows(part)) == 5


# --------------------------------------------------------------- mode 2: actor ranks
@pytest.fixture(scope="module")
def actor_run(tmp_path_factory):
    """1 learner + 1 actor, 1600 steps, uninterrupted."""
    run = tmp_path_factory.mktemp("actors") / "a"
    _ok(
        _torchrun(
            ["qwr-train", *TRAIN, "--actors", "1", "--total-steps", "1600", "--run-dir", str(run)]
        )
    )
    return run


def test_actor_rank_collects_and_the_learner_learns(actor_run):
    config = json.loads((actor_run / "config.json").read_text())
    assert config["world"] == {"world_size": 2, "roles": ["learner", "actor"]}
    main = load_checkpoint(actor_run / "ckpt_1600.pt")
    actor = load_checkpoint(actor_run / "shards" / "rank1" / "ckpt_1600.pt")
    # the learner's replay holds every step the actor collected (2 envs, 1600 steps)
    assert main["replay"]["num_envs"] == 2 and int(main["replay"]["size"]) == 800
    assert main["norm"]["count"] == 1600
    # the actor acts with the weights the learner broadcast after its last epoch
    policy, norm = actor["acting"]
    for name, value in main["policy"].items():
        assert torch.equal(value, policy[name]), name
    for name, value in main["norm"].items():
        assert torch.equal(value, norm[name]), name
    # and holds the chunk it collected one epoch ahead (not yet sent)
    assert int(actor["chunk"]["header"][0]) == 100
    assert [r["step"] for r in _rows(actor_run / "eval.csv")] == ["400", "800", "1200", "1600"]


def test_actor_run_is_reproducible_and_resumes_exactly(actor_run, tmp_path):
    again, split = tmp_path / "again", tmp_path / "split"
    args = ["qwr-train", *TRAIN, "--actors", "1"]
    _ok(_torchrun([*args, "--total-steps", "1600", "--run-dir", str(again)]))
    assert _rows(again / "eval.csv") == _rows(actor_run / "eval.csv")
    _ok(_torchrun([*args, "--total-steps", "800", "--run-dir", str(split)]))
    _ok(_torchrun(["qwr-train", "--resume", str(split), "--total-steps", "1600"]))
    assert _rows(split / "eval.csv") == _rows(actor_run / "eval.csv")
    assert _rows(split / "train.csv") == _rows(actor_run / "train.csv")


def test_actors_act_one_epoch_behind(tmp_path):
    """Epochs 0 and 1 are both collected with the initial policy (the actor collects epoch 1
    while the learner trains on epoch 0), epoch 2 with the weights after epoch 0."""
    from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer

    run = tmp_path / "lag"
    flags = [*TRAIN, "--actors", "1", "--no-normalize-obs", "--checkpoint-every", "200"]
    flags += ["--keep-checkpoints", "5", "--total-steps", "600", "--run-dir", str(run)]
    _ok(_torchrun(["qwr-train", *flags]))
    last = load_checkpoint(run / "ckpt_600.pt")
    cfg = QWRConfig(**{**last["config"], "actors": 0, "run_dir": str(tmp_path / "fresh")})
    initial = QWRTrainer(cfg).policy  # the same seed: the initial weights
    after_epoch0 = QWRTrainer(cfg).policy
    after_epoch0.load_state_dict(load_checkpoint(run / "ckpt_200.pt")["policy"])
    replay = last["replay"]  # [slots, 2 envs, ...]: 100 vector steps per epoch
    with torch.no_grad():
        for epoch, policy in ((0, initial), (1, initial), (2, after_epoch0)):
            rows = slice(100 * epoch, 100 * (epoch + 1))
            obs, mu = replay["obs"][rows].reshape(200, 3), replay["mu"][rows].reshape(200, -1)
            torch.testing.assert_close(mu, policy.mu(obs), msg=f"epoch {epoch}")
    assert not torch.equal(initial.mu(obs), after_epoch0.mu(obs))


def test_a_restart_before_the_first_checkpoint_starts_afresh(tmp_path, monkeypatch, capsys):
    """Workers restarted by torchrun --max-restarts before any checkpoint start over the logs
    their failed attempt left (the same config.json), never over another run's."""
    from qwr_fast.cli.train import qwr_train

    run = tmp_path / "r"
    args = ["--env", "BitFlip-8", "--total-steps", "400", "--no-progress", "--run-dir", str(run)]
    args += ["--critic-steps", "2", "--actor-steps", "2", "--steps-per-epoch", "200"]
    assert qwr_train(args) == 0
    for ckpt in run.glob("ckpt_*.pt"):  # as if the attempt died before its first checkpoint
        ckpt.unlink()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert qwr_train([*args, "--seed", "1"]) == 2  # another config: refused, nothing touched
    assert "holds another run's" in capsys.readouterr().err
    assert qwr_train(args) == 0
    assert [r["step"] for r in _rows(run / "eval.csv")] == ["400"]


def test_two_learners_and_two_actors(tmp_path):
    """4 ranks: learners 0-1 (DDP over the learner group), actors 2-3 (one per learner)."""
    run = tmp_path / "l2a2"
    args = ["qwr-train", *TRAIN, "--num-envs", "4", "--actors", "2", "--total-steps", "800"]
    _ok(_torchrun([*args, "--run-dir", str(run)], nproc=4))
    config = json.loads((run / "config.json").read_text())
    assert config["world"]["roles"] == ["learner", "learner", "actor", "actor"]
    learner0 = load_checkpoint(run / "ckpt_800.pt")
    learner1 = load_checkpoint(run / "shards" / "rank1" / "ckpt_800.pt")
    for part in ("policy", "critic", "target", "norm"):
        for name, value in learner0[part].items():
            assert torch.equal(value, learner1[part][name]), (part, name)
    assert learner0["norm"]["count"] == 800  # both actors' steps, merged on both learners
    for actor in ("rank2", "rank3"):
        policy = load_checkpoint(run / "shards" / actor / "ckpt_800.pt")["acting"][0]
        for name, value in learner0["policy"].items():
            assert torch.equal(value, policy[name]), (actor, name)
    assert [r["step"] for r in _rows(run / "eval.csv")] == ["400", "800"]


# ------------------------------------------- aql-train (modes 1 and 2), dqn-train (mode 1)
AQL = ["aql-train", "--env", "BitFlipSubset-8", "--updates-per-epoch", "10", "--eval-every"]
AQL += ["400", "--eval-episodes", "4", "--checkpoint-every", "400", "--no-progress"]
AQL += ["--no-tensorboard", "--checkpoint-minutes", "0", "--eps-fraction", "0"]
DQN = ["dqn-train", "--env", "BitFlip-8", "--preset", "bitflip", "--learning-starts", "200"]
DQN += ["--eval-every", "400", "--eval-episodes", "4", "--checkpoint-every", "400"]
DQN += ["--no-progress", "--checkpoint-minutes", "0", "--eps-fraction", "0"]
# (--eps-fraction 0: epsilon is at its end value from the first step, so that a run split by
# a smaller --total-steps, then resumed, has the same exploration schedule)


# dqn-train's actors ship 1000 env steps per chunk: the run is 3 chunks, split after 2
DQN_ACTOR = [*DQN, "--actors", "1", "--eval-every", "1000", "--checkpoint-every", "1000"]


@pytest.mark.parametrize(
    ("args", "roles", "steps"),
    [
        (AQL, ["learner", "learner"], 400),
        ([*AQL, "--actors", "1"], ["learner", "actor"], 400),
        (DQN, ["learner", "learner"], 400),
        (DQN_ACTOR, ["learner", "actor"], 1000),
    ],
    ids=["aql-learners", "aql-actor", "dqn-learners", "dqn-actor"],
)
def test_aql_and_dqn_scale_out_identical_reproducible_and_resumable(tmp_path, args, roles, steps):
    a, b, split = tmp_path / "a", tmp_path / "b", tmp_path / "split"
    for run in (a, b):
        _ok(_torchrun([*args, "--total-steps", str(3 * steps), "--run-dir", str(run)]))
    assert json.loads((a / "config.json").read_text())["world"]["roles"] == roles
    assert [r["step"] for r in _rows(a / "eval.csv")] == [str(k * steps) for k in (1, 2, 3)]
    assert _rows(a / "eval.csv") == _rows(b / "eval.csv")
    dqn = args[0] == "dqn-train"
    last = f"ckpt_{3 * steps}.pt"
    main = load_checkpoint(a / ("checkpoint.pt" if dqn else last))
    shard = load_checkpoint(a / "shards" / "rank1" / last)
    assert main["world_size"] == shard["world_size"] == 2
    net = "q" if dqn else "net"
    if roles[1] == "actor":  # it acts with the weights the learner broadcast last
        (acting,) = shard["acting"]  # the preset has no observation normaliser
        parts = [(main[net], acting)]
        assert int(main["replay"]["size"]) * main["replay"]["num_envs"] == 3 * steps
    else:  # two learners: the same networks and optimiser, their own envs and replay
        parts = [(main[p], shard[p]) for p in (net, "target")]
        opt = "opt" if dqn else "opt_q"
        for i, state in main[opt]["state"].items():
            parts.append((state, shard[opt]["state"][i]))
        assert not torch.equal(main["replay"]["obs"], shard["replay"]["obs"])
    for mine, theirs in parts:
        for name, value in mine.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(theirs[name])), name
    _ok(_torchrun([*args, "--total-steps", str(2 * steps), "--run-dir", str(split)]))
    _ok(_torchrun([args[0], "--resume", str(split), "--total-steps", str(3 * steps)]))
    assert _rows(split / "eval.csv") == _rows(a / "eval.csv")
    resumed = load_checkpoint(split / ("checkpoint.pt" if dqn else last))
    for name, value in main[net].items():
        assert torch.equal(value, resumed[net][name]), name
    if not dqn:  # (dqn-train also writes a train.csv row where a run ends)
        assert _rows(split / "train.csv") == _rows(a / "train.csv")


def test_aql_joint_backward_equals_two_optimiser_steps(tmp_path):
    """Under DDP aql-train backpropagates critic + proposal loss once (DDP allows one backward
    per forward): the same update as its single-process two separate steps."""
    from qwr_fast.trainers._common import optimizer_step
    from qwr_fast.trainers.aql import AQLConfig, AQLTrainer
    from qwr_fast.trainers.step import trainer_generator_as_default

    cfg = AQLConfig(
        env="BitFlipSubset-8", num_envs=2, hidden=16, proposal_width=16, num_proposal=4,
        num_uniform=4, batch_size=8, eval_episodes=1, progress=False, tensorboard=False,
        run_dir=str(tmp_path / "one"), grad_clip=0.05,
    )  # fmt: skip
    one = AQLTrainer(cfg)
    two = AQLTrainer(dataclasses.replace(cfg, run_dir=str(tmp_path / "two")))
    before = [p.detach().clone() for p in one.net.parameters()]
    for trainer in (one, two):  # the same steps, samples and candidate draws on both
        trainer.collect(64)
        with trainer_generator_as_default(trainer.gen):  # the trainer's stream, as update() has
            trainer.out = trainer.losses(trainer.sample())
    one.joint_step(one.out)
    for opt, loss, net in (
        (two.opt_q, "critic_loss", two.net.q),
        (two.opt_p, "proposal_loss", two.net.proposal),
    ):
        optimizer_step(opt, net.parameters(), two.out[loss], cfg.grad_clip)
    for (name, p1), p2 in zip(one.net.named_parameters(), two.net.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, msg=name)
    moved = [not torch.equal(p, b) for p, b in zip(one.net.parameters(), before, strict=True)]
    assert all(moved)  # every parameter, critic and proposal, took its step

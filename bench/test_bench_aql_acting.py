"""AQL acting throughput: state -> argmax of Q over 500 candidates (N=100 proposal + M=400
uniform), at the Humanoid shape (obs 348, D=17 sub-actions x K=11 bins, H=E=256), with Q's
action input one-hot (A = 170) or ordinal (A = 17; the trainer's default with ``--bins``).

- ``fused``: the trainer's path: encoder once per state, the proposal's D steps in one
  :func:`proposal_sample` call (on CPU a numba kernel, one sample's state in L1 across the D
  steps), Q of all candidates from the per-state gate through the head of
  :func:`sampled_q_head` (``candidate_actions`` of :mod:`qwr_fast.objectives.aql` +
  ``AQLNet.q_candidates``; on CPU in chunks of 2048 candidates, the one-hot code summing D
  rows of ``W_a`` instead of the one-hot GEMM).
- ``naive``: the eager composite a user would write: the state repeated per candidate through
  the whole Q network (encoder included), the proposal sampled step by step with
  ``Categorical`` in Python.

Both run on ``THREADS`` torch threads (1: ``aql-train``'s default ``--threads``; on the shared
2-core machine 2-thread timings swing by 10x with the other jobs' load).
``extra_info["candidates_per_s"]`` is B * 500 / median. Run::

    python -m pytest bench/test_bench_aql_acting.py -q --benchmark-columns=median,iqr,rounds
"""

import pytest
import torch
from torch.distributions import Categorical

from qwr_fast.actions import ActionAdapter
from qwr_fast.nn.aql_net import AQLNet
from qwr_fast.nn.torsos import make_body
from qwr_fast.objectives.aql import argmax_candidates, candidate_actions

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
OBS, D, K, H, N, M = 348, 17, 11, 256, 100, 400
THREADS = 1


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def make_net(code):
    torch.manual_seed(0)
    spec = ActionAdapter("multi_discrete", (K,) * D, (0,) * D, code)
    return AQLNet(make_body((OBS,), H), OBS, spec, hidden=H, proposal_width=H).to(DEVICE)


@torch.no_grad()
def fused(net, obs, gen):
    feat = net.features(obs)
    cand = candidate_actions(net, feat, N, M, generator=gen)
    return argmax_candidates(net.q_candidates(feat, cand), cand)


@torch.no_grad()
def naive(net, obs, gen):
    B = obs.shape[0]
    p = net.proposal
    z = p.input(net.features(obs)).repeat_interleave(N, dim=0)  # [B * N, E]
    sampled = []
    for d in range(D):
        logits = torch.nn.functional.linear(torch.relu(z), p.heads_w[d], p.heads_b[d])
        a = Categorical(logits=logits).sample()
        sampled.append(a)
        z = z + p.emb[d][a]
    prop = torch.stack(sampled, -1).view(B, N, D)
    unif = torch.randint(0, K, (B, M, D), generator=gen, device=obs.device)
    cand = torch.cat([prop, unif], dim=1)  # [B, N + M, D]
    obs_rep = obs.repeat_interleave(N + M, dim=0)  # [B * (N + M), O]
    q = net.q_values(obs_rep, cand.view(B * (N + M), D)).view(B, N + M)
    return argmax_candidates(q, cand)


@pytest.mark.parametrize("variant", ["fused", "naive"])
@pytest.mark.parametrize("B", [32, 256])
@pytest.mark.parametrize("code", ["onehot", "ordinal"])
def test_aql_acting(benchmark, threads, code, B, variant):
    net = make_net(code)
    obs = torch.randn(B, OBS, device=DEVICE)
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    fn = {"fused": fused, "naive": naive}[variant]
    best, best_q = fn(net, obs, gen)
    assert best.shape == (B, D) and best_q.shape == (B,)

    def run():
        out = fn(net, obs, gen)
        sync()
        return out

    benchmark.pedantic(run, rounds=5 if B == 32 else 3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["candidates_per_s"] = B * (N + M) / benchmark.stats.stats.median
    benchmark.extra_info["device"] = str(DEVICE)
    benchmark.extra_info["threads"] = threads

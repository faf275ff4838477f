"""Offline datasets: the ``.npz`` schema that ``qwr-collect`` writes and ``qwr-train --dataset``
reads.

A dataset holds these arrays (N steps, time ordered; the steps of each env are contiguous, and
the last step of each env's chunk is marked truncated if its episode was still running):

- ``schema_version`` (int, currently 1), ``env_id`` (str), ``policy`` (str: random / checkpoint)
- ``obs[N, *O]``, ``next_obs[N, *O]`` (the bootstrap observation: the final observation when
  the episode ended at this step)
- ``action[N, *A]`` in the env's own action space (int for Discrete)
- ``reward[N]`` float32, ``terminal[N]`` / ``truncated[N]`` bool
- ``mu[N, P]`` / ``next_mu[N, P]`` float32: the behaviour distribution parameters
  (``cat(mean, log_std)`` in the policy's ``[-1, 1]`` action scale, or logits); present only
  when the behaviour policy is a Gaussian/categorical one (not for uniform random Box actions,
  where offline QWR uses the logged action with the fixed std as ``mu``).
"""

from __future__ import annotations

import math
import zipfile
import zlib

import numpy as np
import torch

from qwr_fast.actions import ActionAdapter
from qwr_fast.checkpoint import atomic_write
from qwr_fast.data.replay import Replay

__all__ = ["DATASET_SCHEMA_VERSION", "DatasetRecorder", "load_dataset", "dataset_replay"]

DATASET_SCHEMA_VERSION = 1


class DatasetRecorder:
    """A collector sink (:class:`qwr_fast.data.collect.Collector`) that keeps every step in
    memory and writes the dataset (:meth:`save`). It stores the env's own actions
    (``adapter.to_env`` of the network actions it receives); ``mu`` None is not stored."""

    _KEYS = ("obs", "action", "reward", "terminal", "truncated", "next_obs", "valid")

    def __init__(self, adapter: ActionAdapter) -> None:
        self.adapter = adapter
        self.rec: dict[str, list] = {k: [] for k in (*self._KEYS, "mu", "next_mu")}

    def add(self, obs, mu, action, reward, terminal, truncated, next_obs, next_mu, *, valid):
        env_action = self.adapter.to_env(torch.as_tensor(action))
        values = (obs, env_action, reward, terminal, truncated, next_obs, valid)
        for k, v in zip(self._KEYS, values, strict=True):
            self.rec[k].append(_numpy_copy(v))
        if mu is not None:
            self.rec["mu"].append(_numpy_copy(mu))
            self.rec["next_mu"].append(_numpy_copy(next_mu))

    def save(self, path: str, *, env_id: str, policy: str) -> None:
        """Write the recorded steps to ``path`` (``.npz``, the schema above) atomically: a
        temporary file in the same folder, moved into place when complete."""
        arrays = self._arrays(env_id, policy)
        # to a file object, so numpy appends no ".npz" to the name
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))

    def _arrays(self, env_id: str, policy: str) -> dict[str, np.ndarray]:
        arrays = {k: np.stack(v, axis=1) for k, v in self.rec.items() if v}  # [E, S, ...]
        arrays["truncated"][:, -1] |= ~arrays["terminal"][:, -1]
        valid = arrays.pop("valid").reshape(-1)
        out = {k: v.reshape(-1, *v.shape[2:])[valid] for k, v in arrays.items()}
        return dict(
            schema_version=np.int64(DATASET_SCHEMA_VERSION),
            env_id=np.str_(env_id),
            policy=np.str_(policy),
            **{
                k: v.astype(np.float32) if k in ("reward", "mu", "next_mu") else v
                for k, v in out.items()
            },
        )


def _numpy_copy(x) -> np.ndarray:
    """A numpy copy of an array or a CPU tensor."""
    return np.array(x.numpy() if isinstance(x, torch.Tensor) else x, copy=True)


def load_dataset(path: str, env_id: str):
    """The arrays of the dataset at ``path`` (a dict of numpy arrays, all read at once);
    ValueError naming ``--dataset`` if the file is missing, truncated or not an ``.npz``
    archive, or if its schema version or env differ."""
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with npz:
            data = {k: npz[k] for k in npz.files}  # reads every member: truncation shows here
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(
            f"--dataset {path} is not a readable qwr-collect .npz dataset "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})"
        ) from e
    version = int(data["schema_version"]) if "schema_version" in data else -1
    if version != DATASET_SCHEMA_VERSION:
        raise ValueError(
            f"--dataset {path}: schema_version {version}, expected "
            f"{DATASET_SCHEMA_VERSION} (write it with qwr-collect)"
        )
    if str(data["env_id"]) != env_id:
        raise ValueError(
            f"--dataset {path} was collected on {data['env_id']}, not on --env {env_id}"
        )
    return data


def dataset_replay(
    data,
    adapter: ActionAdapter,
    mu_dim: int,
    *,
    policy_std: float,
    obs_to_tensor,
    obs_dtype: torch.dtype,
    device: torch.device,
) -> Replay:
    """A ``num_envs=1`` replay holding the whole dataset. Without stored ``mu`` of width
    ``mu_dim`` the behaviour is the logged action with std ``policy_std`` (Box) or uniform
    logits (Discrete)."""
    N = data["reward"].shape[0]
    gaussian = adapter.kind == "box"
    action_dtype = torch.float32 if gaussian else torch.int64
    action = torch.as_tensor(adapter.from_env(data["action"]), device=device).to(action_dtype)
    if "mu" in data and data["mu"].shape[-1] == mu_dim:
        mu = torch.as_tensor(data["mu"], dtype=torch.float32, device=device)
        next_mu = torch.as_tensor(data["next_mu"], dtype=torch.float32, device=device)
    elif gaussian:
        log_std = torch.full((N, mu_dim // 2), math.log(policy_std), device=device)
        mu = torch.cat([action, log_std], dim=-1)
        next_mu = torch.cat([torch.roll(action, -1, 0), log_std], dim=-1)
    else:
        mu = torch.zeros(N, mu_dim, device=device)
        next_mu = mu
    replay = Replay(
        N,
        1,
        tuple(data["obs"].shape[1:]),
        mu_dim,
        (adapter.action_dim,) if gaussian else (),
        action_dtype=action_dtype,
        obs_dtype=obs_dtype,
        device=device,
    )
    replay.load_arrays(
        obs=obs_to_tensor(data["obs"]),
        mu=mu,
        action=action,
        reward=torch.as_tensor(data["reward"], dtype=torch.float32),
        terminal=torch.as_tensor(data["terminal"], dtype=torch.bool),
        truncated=torch.as_tensor(data["truncated"], dtype=torch.bool),
        next_obs=obs_to_tensor(data["next_obs"]),
        next_mu=next_mu,
    )
    return replay

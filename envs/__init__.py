"""Vector environments: ``make(env_id, num_envs, seed=...)`` -> ``gymnasium.vector.VectorEnv``.

Every env returned by ``make`` follows one contract (``list_envs()`` gives the ids):

- Batched ``reset(seed=..., options=None)`` -> ``(obs, {})`` and ``step(actions)`` ->
  ``(obs, reward, terminated, truncated, infos)``; ``single_observation_space`` /
  ``single_action_space`` and their batched versions. Actions must have the batched shape
  (``(num_envs,)`` for ``Discrete``, ``(num_envs, N)`` for ``MultiBinary``) and an integer
  (or bool) dtype; anything else, or a value outside the space, raises ``TypeError`` /
  ``ValueError`` before any env moves.
- Autoreset: ``metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.SAME_STEP`` by
  default, for every family; ``make(..., autoreset_mode=AutoresetMode.NEXT_STEP)`` gives
  gymnasium's own default instead (what its vector observation wrappers such as
  ``NormalizeObservation`` require): the ending step returns the episode's last observation in
  ``obs[i]`` (no ``final_obs``), and the next step ignores ``actions[i]`` and returns the reset
  observation with reward 0 and no done flags (``qwr_fast.envs._autoreset``). In SAME_STEP
  mode: when env i's episode ends at a step, that step already returns the *reset*
  observation in ``obs[i]``, and ``infos["final_obs"][i]`` holds the episode's last
  observation (``infos["_final_obs"][i]`` is True). There is no extra no-op step. When any
  episode ends, ``infos["final_obs"]`` is a full ``[num_envs, ...]`` array whose rows for
  envs that did not finish equal ``obs``, so it is the true next observation s_{t+1} of every
  env; when none ends, ``infos`` is ``{}``.
- Termination and truncation are separate: ``terminated`` means the MDP reached a terminal
  state (no bootstrap), ``truncated`` means a time limit cut the episode (bootstrap from
  ``infos["final_obs"]``). BitFlip episodes end by truncation only (unless
  ``terminate_when_all_ones=True``).
- Episode statistics: when env i's episode ends, ``infos["episode_stats"]["r"][i]`` (return,
  float32) and ``infos["episode_stats"]["l"][i]`` (length, int32) are set and
  ``infos["_episode_stats"][i]`` is True (the layout of gymnasium's ``RecordEpisodeStatistics``
  vector wrapper, under a key of their own so that wrapper can still add ``"episode"``;
  other rows are 0).
- Buffers: with ``copy=True`` (default) every returned array is a fresh copy. With
  ``copy=False`` the env returns its preallocated buffers, overwritten by the next call: the
  step then allocates no arrays, and the caller copies what it keeps and never writes to them.
- Snapshots: ``env.get_state(indices=None) -> EnvState`` copies the exact state (RNG streams,
  step counters, episode statistics); ``env.set_state(state, indices=None)`` writes it back
  (a 1-env state broadcasts) and returns the observations; after it, the same actions give
  bit-identical observations, rewards and flags. ``env.clone_states(source, targets=None)``
  copies env ``source`` into ``targets`` (default: all envs), for planners that launch many
  rollouts from one real state; clones share the RNG stream, so their autoresets agree too.
- Fresh chance: ``set_state(state, indices=None, *, reseed=None)`` and ``clone_states(source,
  targets=None, *, reseed=None)``. ``reseed=None`` is the exact restore above. An int ``r``
  restores the same state but gives the env written to row i a fresh random stream derived
  from ``(r, i)``; a sequence gives one int per restored row (equal ints, equal streams). The
  obs, counters, returns and everything deterministic equal the exact restore's; only chance
  to come differs (BitFlip's random resets, MinAtar's sticky actions and spawns, Atari's sticky
  actions and no-op starts, Hanabi's future card draws, MuJoCo's reset noise), so a planner's
  simulators do not foresee the real env's chance. The snapshot itself is never changed.
- Seeding: ``reset(seed=s)`` gives env i the stream ``(s, i)``; ``reset(seed=[s0, s1, ...])``
  one seed per env (a None entry: that env continues its current stream, as in gymnasium);
  ``reset()`` keeps the current streams, except that the first ``reset()`` after
  ``make(..., seed=s)`` behaves as ``reset(seed=s)``.
- Misuse: ``step`` before the first ``reset()`` (or ``set_state``) raises ``RuntimeError("call
  reset() before step()")``, after ``close()`` ``RuntimeError("env is closed")``; env indices
  (``get_state``/``set_state`` ``indices``, ``clone_states`` ``source``/``targets``) must lie
  in ``[0, num_envs)``: negative indices are refused (ValueError), slices are taken as given.

Families: ``BitFlip-<N>`` and ``BitFlipSubset-<N>`` (Numba, see ``qwr_fast.envs.bitflip``);
MuJoCo ``<Task>-v5`` (``qwr_fast.envs.mujoco``, extra ``[mujoco]``), ``MinAtar/<Game>``
(``qwr_fast.envs.minatar``, extra ``[minatar]``), ``ALE/<Game>-v5`` (``qwr_fast.envs.atari``,
extra ``[atari]``) and ``Hanabi-<Variant>`` (``qwr_fast.envs.hanabi``, extra ``[hanabi]``), which
step real single envs in one Python loop (``qwr_fast.envs._loop``).
``discretize(env, bins)`` (or ``make(..., bins=k)``) turns a Box action space into
``MultiDiscrete`` bins.
"""

from qwr_fast.envs._loop import LoopVectorEnv
from qwr_fast.envs._registry import list_envs, make
from qwr_fast.envs._vector import ArrayVectorEnv, EnvState
from qwr_fast.envs.atari import AtariVectorEnv
from qwr_fast.envs.bitflip import BitFlipSubsetVectorEnv, BitFlipVectorEnv
from qwr_fast.envs.discretize import DiscretizedVectorEnv, discretize
from qwr_fast.envs.hanabi import HanabiVectorEnv
from qwr_fast.envs.minatar import MinAtarVectorEnv
from qwr_fast.envs.mujoco import MujocoVectorEnv

__all__ = [
    "ArrayVectorEnv",
    "AtariVectorEnv",
    "BitFlipSubsetVectorEnv",
    "BitFlipVectorEnv",
    "DiscretizedVectorEnv",
    "EnvState",
    "HanabiVectorEnv",
    "LoopVectorEnv",
    "MinAtarVectorEnv",
    "MujocoVectorEnv",
    "discretize",
    "list_envs",
    "make",
]

"""Atari (``ALE/<Game>-v5``, ale-py) with the standard preprocessing of sample-efficient Atari
work, behind the ``qwr_fast.envs`` vector API.

Per env: ``gymnasium.make("ALE/<Game>-v5", frameskip=1, repeat_action_probability=0.0,
full_action_space=False, max_num_frames_per_episode=108_000).unwrapped``, wrapped in gymnasium's
``StickyAction(repeat_action_probability=0.25)``, ``AtariPreprocessing(noop_max=30,
frame_skip=4, screen_size=84, terminal_on_life_loss=False, grayscale_obs=True,
scale_obs=False)`` and ``FrameStackObservation(stack_size=4)``. So:

- an agent step repeats the action for 4 frames and observes the pixel-wise max of the last 2
  grayscale frames, resized to 84x84 (``cv2.INTER_AREA``); observations are ``uint8
  [4, 84, 84]``, the last 4 of those, oldest first (the stack is filled with the first frame
  after a reset);
- sticky actions as v5 defines them: on every emulator frame, with probability 0.25 the
  previous frame's action is executed instead of the agent's (each of the 4 frames of a step
  draws anew). The rule is applied by gymnasium's ``StickyAction`` wrapper on the frame-level
  env (with the env's ``np_random``) instead of inside ALE (``repeat_action_probability=0``),
  because ALE's ``cloneState(include_rng=True)`` does not save the last action (ale-py
  0.12.1: on Pong with p=0.25, 3 of 10 restored replays diverged; 0 of 20 with p=0). The
  distribution is v5's; the random stream is not ALE's;
- up to 30 no-op starts: after a reset, ``U{1..30}`` no-op frames from the env's
  ``np_random``;
- the minimal action set (``full_action_space=False``); reward is the sum over the 4 frames,
  unclipped; a life loss does not end the episode; the game over is termination and ALE's
  108,000-frame cap (27,000 agent steps) is truncation.

The kwargs ``sticky_action_prob``, ``noop_max``, ``frame_skip``, ``screen_size``,
``stack_size``, ``terminal_on_life_loss``, ``full_action_space`` and ``max_num_frames`` change
these defaults. ``AtariPreprocessing`` needs OpenCV (``opencv-python``).

State: ALE's ``cloneState(include_rng=True)`` (emulator and frame counters), the env's
``np_random`` state (no-op starts, sticky draws), ``StickyAction``'s last action and counters,
``AtariPreprocessing``'s two max-pool buffers, lives and game-over flag, and the frame stack.
A checkpoint stores the ALE state as the bytes of ALE's own serialisation and the rest as
numbers, tuples and arrays (``set_state`` checks their shapes against the env).

Fresh chance (``set_state(..., reseed=r)``): the chance of this family is the base env's
``np_random`` alone (the sticky-action draws of every frame and the no-op count of every reset),
so a reseeded restore restores everything above exactly and then replaces that generator's state
by a fresh PCG64 from the restored env's reseed word. ALE's RNGs need no reseed (ALE's
``StellaEnvironment::act`` and ``stella::System``; checked on ale-py 0.12.1): the environment RNG
that ``include_rng`` saves is read only by ALE's own sticky actions, which are off here (each
frame keeps the new action when ``nextDouble() >= 0``, whatever the draw), and the emulator's
system RNG (console-reset RAM and RIOT timer) is seeded with the fixed ``system_random_seed`` in
every env, whatever its seed (two Breakout envs seeded 1 and 2 hold equal emulator states after
their seeded resets), so it is part of the deterministic emulator state. Re-seeding ALE's
environment RNG would take ``setInt("random_seed")`` plus ``loadROM`` (0.2 s on this project's
CPU box) and change nothing that is observed.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import numpy as np

from qwr_fast.envs._loop import (
    LoopVectorEnv,
    check_num_envs,
    check_plain_snapshot,
    check_rng_state,
    missing_extra,
)
from qwr_fast.envs._vector import is_plain

ATARI_100K_GAMES = (
    "Alien", "Amidar", "Assault", "Asterix", "BankHeist", "BattleZone", "Boxing", "Breakout",
    "ChopperCommand", "CrazyClimber", "DemonAttack", "Freeway", "Frostbite", "Gopher", "Hero",
    "Jamesbond", "Kangaroo", "Krull", "KungFuMaster", "MsPacman", "Pong", "PrivateEye", "Qbert",
    "RoadRunner", "Seaquest", "UpNDown",
)  # fmt: skip
ATARI_IDS = tuple(f"ALE/{game}-v5" for game in ATARI_100K_GAMES)
_STICKY_FIELDS = ("last_action", "is_sticky_actions", "num_repeats", "repeats_taken")


def _import_atari():
    try:
        import ale_py
        import gymnasium
    except ImportError as e:
        raise missing_extra("ale-py", "atari", "Atari") from e
    try:
        import cv2  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "the Atari preprocessing (gymnasium's AtariPreprocessing) needs OpenCV: "
            "pip install qwr_fast[atari] (or opencv-python)"
        ) from e
    gymnasium.register_envs(ale_py)
    return gymnasium


class AtariVectorEnv(LoopVectorEnv):
    """``num_envs`` preprocessed ALE games of one kind; see the module docstring."""

    FAMILY = "Atari"

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        *,
        sticky_action_prob: float = 0.25,
        noop_max: int = 30,
        frame_skip: int = 4,
        screen_size: int = 84,
        stack_size: int = 4,
        terminal_on_life_loss: bool = False,
        full_action_space: bool = False,
        max_num_frames: int = 108_000,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        copy: bool = True,
    ) -> None:
        if not isinstance(env_id, str) or not env_id.startswith("ALE/"):
            raise ValueError(f"unknown Atari id {env_id!r}; expected 'ALE/<Game>-v5'")
        gymnasium = _import_atari()
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, StickyAction

        if env_id not in gymnasium.registry or not env_id.endswith("-v5"):
            raise ValueError(f"unknown Atari id {env_id!r}; e.g. {', '.join(ATARI_IDS[:4])}, ...")
        if not 0.0 <= sticky_action_prob < 1.0:
            raise ValueError(f"sticky_action_prob must lie in [0, 1), got {sticky_action_prob}")
        self.env_id = env_id
        self.sticky_action_prob = float(sticky_action_prob)
        self.options = (
            ("sticky_action_prob", float(sticky_action_prob)),
            ("noop_max", int(noop_max)),
            ("frame_skip", int(frame_skip)),
            ("screen_size", int(screen_size)),
            ("stack_size", int(stack_size)),
            ("terminal_on_life_loss", bool(terminal_on_life_loss)),
            ("full_action_space", bool(full_action_space)),
            ("max_num_frames", int(max_num_frames)),
        )
        self._bases, self._stickies, self._pres, self._stacks = [], [], [], []
        for _ in range(check_num_envs(num_envs)):
            base = gymnasium.make(
                env_id,
                frameskip=1,
                repeat_action_probability=0.0,
                full_action_space=bool(full_action_space),
                max_num_frames_per_episode=int(max_num_frames),
            ).unwrapped
            sticky = StickyAction(base, float(sticky_action_prob), repeat_action_duration=1)
            pre = AtariPreprocessing(
                sticky,
                noop_max=noop_max,
                frame_skip=frame_skip,
                screen_size=screen_size,
                terminal_on_life_loss=terminal_on_life_loss,
                grayscale_obs=True,
                scale_obs=False,
            )
            self._bases.append(base)
            self._stickies.append(sticky)
            self._pres.append(pre)
            self._stacks.append(FrameStackObservation(pre, stack_size))
        first = self._stacks[0]
        super().__init__(
            num_envs,
            first.observation_space,
            first.action_space,
            max_episode_steps=max_episode_steps,
            seed=seed,
            copy=copy,
        )

    @property
    def config(self) -> tuple:
        return ("Atari", self.env_id, *self.options, ("max_episode_steps", self.max_episode_steps))

    def _reset_one(self, i: int, seed: int | None) -> np.ndarray:
        return self._stacks[i].reset(seed=seed)[0]

    def _step_one(self, i: int, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        obs, reward, terminated, truncated, _ = self._stacks[i].step(action)
        return obs, reward, terminated, truncated

    def _snapshot_one(self, i: int) -> Any:
        base, pre, stack = self._bases[i], self._pres[i], self._stacks[i]
        sticky = self._stickies[i]
        return (
            base.ale.cloneState(include_rng=True),
            copy.deepcopy(base.np_random.bit_generator.state),
            tuple(getattr(sticky, k) for k in _STICKY_FIELDS),
            [b.copy() for b in pre.obs_buffer],
            pre.lives,
            pre.game_over,
            [o.copy() for o in stack.obs_queue],
        )

    def _restore_one(self, i: int, snapshot: Any) -> None:
        base, pre, stack = self._bases[i], self._pres[i], self._stacks[i]
        ale_state, rng_state, sticky_fields, buffers, lives, game_over, frames = snapshot
        base.ale.restoreState(ale_state)
        base.np_random.bit_generator.state = rng_state
        for k, v in zip(_STICKY_FIELDS, sticky_fields, strict=True):
            setattr(self._stickies[i], k, v)
        for dst, src in zip(pre.obs_buffer, buffers, strict=True):
            dst[...] = src
        pre.lives, pre.game_over = lives, game_over
        stack.obs_queue = deque((o.copy() for o in frames), maxlen=stack.stack_size)

    @classmethod
    def _snapshot_to_plain(cls, snapshot: Any) -> dict[str, Any]:
        ale_state, rng_state, sticky_fields, buffers, lives, game_over, frames = snapshot
        return {
            "family": cls.FAMILY,
            "ale": bytes(ale_state.__getstate__()),  # ALE's own serialisation of the state
            "rng": copy.deepcopy(rng_state),
            "sticky": tuple(sticky_fields),
            "buffers": [np.array(b) for b in buffers],
            "lives": int(lives),
            "game_over": bool(game_over),
            "frames": [np.array(o) for o in frames],
        }

    def _snapshot_from_plain(self, i: int, plain: dict[str, Any]) -> Any:
        keys = ("ale", "rng", "sticky", "buffers", "lives", "game_over", "frames")
        p = check_plain_snapshot(plain, self.FAMILY, keys)
        import ale_py

        pre, stack = self._pres[i], self._stacks[i]
        _check_arrays(p["buffers"], list(pre.obs_buffer), "buffers")
        _check_arrays(p["frames"], list(stack.obs_queue), "frames")
        sticky = p["sticky"]
        if type(sticky) is not tuple or len(sticky) != len(_STICKY_FIELDS) or not is_plain(sticky):
            raise ValueError(f"Atari snapshot 'sticky' must be {len(_STICKY_FIELDS)} numbers")
        if type(p["ale"]) is not bytes or type(p["lives"]) is not int:
            raise ValueError("Atari snapshot 'ale' must be bytes and 'lives' an int")
        ale_state = ale_py.ALEState.__new__(ale_py.ALEState)
        ale_state.__setstate__(p["ale"])
        rng = check_rng_state(p["rng"], self._bases[i].np_random.bit_generator, self.FAMILY)
        return (ale_state, rng, sticky, p["buffers"], p["lives"], bool(p["game_over"]),
                p["frames"])  # fmt: skip

    def _reseed_one(self, i: int, seed: int) -> None:
        # All of this family's chance comes from the base env's ``np_random`` (see the module
        # docstring): a PCG64 from the seed, as gymnasium's ``reset(seed=...)`` makes it. ALE's own
        # RNG, restored with the emulator, is never consulted (repeat_action_probability=0).
        self._bases[i].np_random.bit_generator.state = np.random.PCG64(seed).state

    def close_extras(self, **kwargs: Any) -> None:
        for env in self._stacks:
            env.close()


def _check_arrays(got: Any, want: list[np.ndarray], name: str) -> None:
    """ValueError unless ``got`` is a list of arrays of the shapes and dtypes of ``want``."""
    ok = type(got) is list and len(got) == len(want)
    ok = ok and all(
        type(g) is np.ndarray and g.shape == w.shape and g.dtype == w.dtype
        for g, w in zip(got, want, strict=True)
    )
    if not ok:
        shapes = [w.shape for w in want]
        raise ValueError(f"Atari snapshot {name!r} must be {len(want)} arrays of shapes {shapes}")

"""How a trainer's update step runs: eagerly, compiled whole, or captured in a CUDA graph.

A trainer writes each of its update steps (e.g. QWR's critic step: sample a replay batch, loss,
backward, clip, optimiser step, target sync) as one function of no arguments over tensors whose
storage never moves (the networks, the optimiser state, the replay, its device-side counters),
which draws its randomness from the default generator and reads nothing on the host. Then:

- ``eager``: the function is called as it is (the normal path).
- ``compile``: ``torch.compile`` of the whole function (``fallback_random``: the compiled
  random draws are eager's, so a compiled run follows the same stream; graph breaks where an
  op does not trace, e.g. ``Tensor.backward``).
- ``cuda-graphs``: on CUDA, three warm-up calls on a side stream, then the function is
  captured once in a CUDA graph (compiled first when ``compile`` is also asked for) and every
  later call replays it; its outputs are the graph's static output tensors (read them before
  the next replay). The default CUDA generator is registered with every capture by PyTorch, so
  replays draw fresh random numbers.

:func:`trainer_generator_as_default` lends the trainer's own generator to the default
generator for the duration of an update phase, so the steps follow the trainer's seeded stream
(and a checkpoint's generator state covers them) in every mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal

import torch

__all__ = ["StepMode", "UpdateStep", "check_step_mode", "step_mode", "trainer_generator_as_default"]

StepMode = Literal["eager", "compile", "cuda-graphs", "compile+cuda-graphs"]

WARMUP_CALLS = 3
"""Eager calls on a side stream before a CUDA graph is captured (as PyTorch's docs advise:
lazy initialisation, e.g. optimiser state and cuBLAS workspaces, must happen before capture)."""


def check_step_mode(cuda_graphs: bool, device: torch.device) -> None:
    """ValueError naming ``--cuda-graphs`` when it is asked for on a device without CUDA."""
    if cuda_graphs and device.type != "cuda":
        raise ValueError(
            f"--cuda-graphs needs a CUDA device (this run's device is {device.type}); "
            "drop the flag, or run with --device cuda on a machine with an NVIDIA GPU"
        )


def step_mode(compile: bool, cuda_graphs: bool) -> StepMode:
    """The mode for a trainer's ``--compile`` and ``--cuda-graphs`` flags."""
    if cuda_graphs:
        return "compile+cuda-graphs" if compile else "cuda-graphs"
    return "compile" if compile else "eager"


def _default_generator(device: torch.device) -> torch.Generator:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    if device.type != "cpu":
        raise ValueError(f"no default generator for device {device}")
    return torch.default_generator


@contextlib.contextmanager
def trainer_generator_as_default(gen: torch.Generator) -> Iterator[None]:
    """Within the block, the default generator of ``gen``'s device continues ``gen``'s stream;
    after it, ``gen`` holds where the stream got to and the default generator is restored."""
    default = _default_generator(gen.device)
    saved = default.get_state()
    default.set_state(gen.get_state())
    try:
        yield
    finally:
        gen.set_state(default.get_state())
        default.set_state(saved)


class UpdateStep:
    """Runs ``fn`` (no arguments, returns a dict of tensors) in ``mode`` (module docstring).

    Under ``cuda-graphs`` the returned dict holds the graph's static outputs: their values are
    the latest step's until the next call.
    """

    def __init__(self, fn: Callable[[], dict[str, torch.Tensor]], mode: StepMode = "eager"):
        if mode not in ("eager", "compile", "cuda-graphs", "compile+cuda-graphs"):
            raise ValueError(
                f"mode must be eager, compile, cuda-graphs or compile+cuda-graphs, got {mode!r}"
            )
        self.mode = mode
        self.fn = fn
        if "compile" in mode:
            self.fn = torch.compile(fn, options={"fallback_random": True})
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_out: dict[str, torch.Tensor] | None = None
        self.calls = 0

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        if "cuda-graphs" not in self.mode:
            return self.fn()
        if self.graph is not None:
            self.graph.replay()
            return self.static_out
        if self.calls <= WARMUP_CALLS:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.fn()
            torch.cuda.current_stream().wait_stream(side)
            return out
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_out = self.fn()
        self.graph = graph
        graph.replay()  # capture records the step without running it: run this call's step
        return self.static_out

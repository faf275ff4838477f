"""Videos of evaluation episodes (``--capture-video``): every ``--video-every`` evaluations the
greedy evaluation's first episode (eval env 0, the same seeded episode whose return eval.csv
counts; no extra rollout) is written to ``RUN_DIR/videos/step_<k>.mp4``, ``k`` the env step.

The evaluation vector envs have no ``render()``; :func:`render_frame` draws env ``i`` of one:

* BitFlip / BitFlipSubset: the bits as a grid of cells (white: 1, black: 0), 8 per row;
* MinAtar: the state's channels in MinAtar's own colour scheme (its GUI draws the same grid);
* ALE: the emulator's RGB screen;
* MuJoCo: MuJoCo's offscreen renderer, which needs a headless OpenGL (EGL or OSMesa,
  ``MUJOCO_GL``); :func:`check_video` picks one that works or fails with one line;
* Hanabi: the OpenSpiel board text, drawn with PIL's default font.

Encoding uses imageio with the ffmpeg binary that imageio-ffmpeg ships (the ``video`` extra:
``pip install -e ".[video]"``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

__all__ = ["FPS", "EvalRecorder", "check_video", "render_frame", "write_video"]

FPS = 15
CELL = 16  # pixels per grid cell (BitFlip, MinAtar)
MUJOCO_SIZE = (240, 320)  # height, width
_GL_PROBE = (
    "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); "
    "r = mujoco.Renderer(m, 16, 16); r.update_scene(mujoco.MjData(m)); r.render()"
)


def _unwrap(env):
    """The family env under wrappers (``discretize``)."""
    while not hasattr(env, "config") and hasattr(env, "env"):
        env = env.env
    return env


def _family(env) -> str:
    cfg = getattr(_unwrap(env), "config", None)
    return cfg[0] if isinstance(cfg, tuple) and cfg and isinstance(cfg[0], str) else ""


def _mujoco_gl() -> str | None:
    """A ``MUJOCO_GL`` value whose offscreen renderer works here (tried in a subprocess, so a
    failing backend cannot break this process), or None."""
    for gl in [os.environ["MUJOCO_GL"]] if os.environ.get("MUJOCO_GL") else ["egl", "osmesa"]:
        env = {**os.environ, "MUJOCO_GL": gl, "PYOPENGL_PLATFORM": gl}
        try:
            ok = subprocess.run(
                [sys.executable, "-c", _GL_PROBE], env=env, capture_output=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ok.returncode == 0:
            return gl
    return None


def check_video(cfg) -> None:
    """Raise MissingExtra (one line) unless evaluation videos of ``cfg.env`` can be written:
    imageio and imageio-ffmpeg installed; for MuJoCo, a headless OpenGL backend (EGL or
    OSMesa), which is then set as ``MUJOCO_GL`` if none was."""
    from qwr_fast.trainers.tracking import MissingExtra, require

    if getattr(cfg, "video_every", 1) < 1:
        raise ValueError(f"--video-every must be >= 1, got {cfg.video_every}")
    require("imageio", "--capture-video", "video")
    ffmpeg = require("imageio_ffmpeg", "--capture-video", "video")
    try:
        ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise MissingExtra(f"--capture-video: no ffmpeg binary ({e})") from None
    from qwr_fast.envs.mujoco import MUJOCO_IDS

    if cfg.env in MUJOCO_IDS:
        gl = _mujoco_gl()
        if gl is None:
            raise MissingExtra(
                f"--capture-video of {cfg.env} needs a headless OpenGL for MuJoCo's renderer: "
                "install EGL (apt install libegl1) or OSMesa (apt install libosmesa6) and set "
                "MUJOCO_GL=egl or MUJOCO_GL=osmesa"
            )
        os.environ.setdefault("MUJOCO_GL", gl)
        os.environ.setdefault("PYOPENGL_PLATFORM", gl)
        try:  # mujoco picks its GL when first imported: this process may have another one
            import mujoco

            mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 16, 16).close()
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise MissingExtra(
                f"--capture-video of {cfg.env}: MuJoCo's renderer cannot start in this process "
                f"({msg}); set MUJOCO_GL={gl} before starting it"
            ) from None


def _grid(cells: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 cell colours -> an image with CELL-pixel cells."""
    return np.repeat(np.repeat(cells, CELL, 0), CELL, 1)


def _bitflip_frame(bits: np.ndarray) -> np.ndarray:
    n = len(bits)
    cols = min(n, 8)
    rows = -(-n // cols)
    cells = np.full((rows * cols, 3), 96, np.uint8)  # grey: past the last bit
    cells[:n] = np.where(np.asarray(bits)[:, None] > 0.5, 255, 0).astype(np.uint8)
    img = _grid(cells.reshape(rows, cols, 3))
    img[::CELL, :] = img[:, ::CELL] = 128  # cell borders
    return img


def _minatar_palette(n: int) -> np.ndarray:
    """MinAtar's GUI colours: seaborn's cubehelix palette of n + 1 colours, black first."""
    # seaborn.cubehelix_palette(n, ...) as MinAtar uses it, computed without seaborn
    from matplotlib import colors

    cmap = colors.LinearSegmentedColormap.from_list(
        "minatar", ["#2e1e3b", "#6f4c8f", "#9f8cbd", "#c7d6e0", "#e6f1ee"]
    )
    pal = [(0, 0, 0)] + [cmap(i / max(1, n - 1))[:3] for i in range(n)]
    return (np.array(pal) * 255).astype(np.uint8)


def _minatar_frame(state: np.ndarray) -> np.ndarray:
    state = np.asarray(state, dtype=bool)
    n = state.shape[-1]
    idx = np.amax(state * np.arange(1, n + 1), axis=-1)  # the top channel of each cell
    return _grid(_minatar_palette(n)[idx])


def _text_frame(text: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    lines = text.splitlines() or [""]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    w = max(int(probe.textlength(line, font=font)) for line in lines) + 16
    h = 14 * len(lines) + 16
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        draw.text((8, 8 + 14 * k), line, fill=(0, 0, 0), font=font)
    return np.asarray(img)


_renderers: dict = {}


def _mujoco_frame(env) -> np.ndarray:
    import mujoco

    key = id(env.model)
    if key not in _renderers:
        # the env's own default camera (gymnasium's default_camera_config), following body 1
        cam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(env.model, cam)
        if env.model.nbody > 1:
            cam.type, cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, 1
        renderer = getattr(env, "mujoco_renderer", None)
        for k, v in (getattr(renderer, "default_cam_config", None) or {}).items():
            if k == "lookat":
                cam.lookat[:] = v
            elif hasattr(cam, k):
                setattr(cam, k, v)
        _renderers[key] = (mujoco.Renderer(env.model, *MUJOCO_SIZE), cam)
    r, cam = _renderers[key]
    r.update_scene(env.data, camera=cam)
    return r.render().copy()


def render_frame(env, i: int, obs: np.ndarray) -> np.ndarray:
    """An ``[H, W, 3]`` uint8 image of env ``i`` of the vector env ``env`` whose latest
    observation row is ``obs``."""
    base = _unwrap(env)
    family = _family(env)
    if family.startswith("BitFlip"):
        return _bitflip_frame(obs)
    if family == "MinAtar" or hasattr(base, "_games"):
        return _minatar_frame(base._games[i].state())
    if hasattr(base, "_bases"):  # ALE
        return np.asarray(base._bases[i].ale.getScreenRGB())
    if hasattr(base, "_states"):  # Hanabi (OpenSpiel)
        return _text_frame(str(base._states[i]))
    if hasattr(base, "_envs") and hasattr(base._envs[i], "data"):  # MuJoCo
        return _mujoco_frame(base._envs[i])
    raise ValueError(f"--capture-video: cannot draw frames of {type(base).__name__}")


def _pad(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = np.zeros((*size, 3), np.uint8)
    h, w = min(size[0], frame.shape[0]), min(size[1], frame.shape[1])
    out[:h, :w] = frame[:h, :w, :3]
    return out


def write_video(path: str, frames: list[np.ndarray], fps: int = FPS) -> str:
    """Encode ``frames`` (uint8 RGB, padded to one size, a multiple of 16) as H.264 mp4."""
    import imageio.v2 as imageio

    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    size = (-(-h // 16) * 16, -(-w // 16) * 16)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp.mp4"
    with imageio.get_writer(
        tmp, fps=fps, codec="libx264", macro_block_size=16, ffmpeg_log_level="error"
    ) as w_:
        for f in frames:
            w_.append_data(_pad(np.asarray(f, dtype=np.uint8), size))
    os.replace(tmp, path)
    return path


class EvalRecorder:
    """Context manager around one evaluation: :func:`qwr_fast.trainers._common.eval_returns`
    inside it hands each observation of its env 0 to :meth:`__call__`; on exit the frames are
    written to ``RUN_DIR/videos/step_<step>.mp4`` (and to W&B through ``log`` if given)."""

    def __init__(self, run_dir: str, step: int, log=None) -> None:
        self.path = os.path.join(run_dir, "videos", f"step_{step}.mp4")
        self.step, self.log = step, log
        self.frames: list[np.ndarray] = []

    def __call__(self, env, obs) -> None:
        self.frames.append(render_frame(env, 0, np.asarray(obs)[0]))

    def __enter__(self) -> EvalRecorder:
        from qwr_fast.trainers import _common

        _common._frame_hooks.append(self)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        from qwr_fast.trainers import _common

        _common._frame_hooks.remove(self)
        if exc_type is None and self.frames:
            write_video(self.path, self.frames)
            if self.log is not None and hasattr(self.log, "log_video"):
                self.log.log_video(self.path, self.step, FPS)

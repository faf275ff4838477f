"""Videos of evaluation episodes (``--capture-video``, issue 21): the greedy evaluation's first
episode of eval env 0 is encoded to RUN_DIR/videos/step_<k>.mp4 every ``video_every``
evaluations; each env family draws rgb frames; without the video extra the flag is a one-line
error."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from qwr_fast.cli.train import qwr_train
from qwr_fast.envs import make
from qwr_fast.trainers import dqn, qwr
from qwr_fast.trainers.video import render_frame

iio = pytest.importorskip("imageio.v3")
pytest.importorskip("imageio_ffmpeg")


def _frames(path) -> np.ndarray:
    frames = iio.imread(path)  # decodes the mp4 (ffmpeg)
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8
    return frames


def test_bitflip_videos_every_other_evaluation(tmp_path):
    cfg = qwr.QWRConfig(
        env="BitFlip-8",
        run_dir=str(tmp_path),
        total_steps=120,
        steps_per_epoch=40,
        critic_steps=2,
        actor_steps=2,
        batch_size=16,
        hidden=16,
        num_envs=2,
        eval_every=40,
        eval_episodes=2,
        device="cpu",
        progress=False,
        tensorboard=False,
        capture_video=True,
        video_every=2,
    )
    qwr.QWRTrainer(cfg).train()
    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == ["step_120.mp4", "step_40.mp4"]  # evaluations 0 and 2 of 0, 1, 2
    frames = _frames(tmp_path / "videos" / "step_40.mp4")
    assert len(frames) > 1
    assert len({f.tobytes() for f in frames}) > 1  # the bits change along the episode


def test_minatar_video_of_dqn_evaluation(tmp_path):
    pytest.importorskip("minatar")
    cfg = dqn.DQNConfig(
        env="MinAtar/Breakout",
        num_envs=2,
        hidden=16,
        batch_size=8,
        learning_starts=40,
        total_steps=60,
        eval_every=60,
        eval_episodes=1,
        eval_max_steps=200,
        run_dir=str(tmp_path),
        progress=False,
        capture_video=True,
    )
    dqn.DQNTrainer(cfg).train()
    frames = _frames(tmp_path / "videos" / "step_60.mp4")
    assert len(frames) > 1 and frames.shape[1:3] == (160, 160)  # 10 x 10 cells of 16 px


def test_hanabi_frame_is_the_board_text():
    pytest.importorskip("pyspiel")
    env = make("Hanabi-VerySmall", 1, seed=0)
    obs, _ = env.reset(seed=0)
    frame = render_frame(env, 0, obs[0])
    assert frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8
    assert frame.min() < 64 and frame.max() == 255  # dark text on white


def test_capture_video_without_the_extra_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    run_dir = tmp_path / "run"
    argv = ["--env", "BitFlip-4", "--run-dir", str(run_dir), "--capture-video", "--no-progress"]
    assert qwr_train(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--capture-video" in errors[0] and "qwr_fast[video]" in errors[0]
    assert not run_dir.exists()


MUJOCO_VIDEO = """
import sys
from types import SimpleNamespace
from qwr_fast.envs import make
from qwr_fast.trainers.tracking import MissingExtra
from qwr_fast.trainers.video import check_video, render_frame, write_video
try:
    check_video(SimpleNamespace(env="Hopper-v5", video_every=1))
except MissingExtra as e:
    sys.exit(str(e))
env = make("Hopper-v5", 1, seed=0)
obs, _ = env.reset(seed=0)
frames = [render_frame(env, 0, obs[0])]
for _ in range(3):
    obs, *_ = env.step(env.action_space.sample())
    frames.append(render_frame(env, 0, obs[0]))
write_video(sys.argv[1], frames)
"""


def test_mujoco_video_or_one_line_naming_the_gl_to_install(tmp_path, monkeypatch):
    """In a fresh process (mujoco picks its OpenGL when first imported), as the entry points
    run it: Hopper-v5 frames encode where EGL or OSMesa works, else one line names them."""
    pytest.importorskip("mujoco")
    from qwr_fast.trainers import video
    from qwr_fast.trainers.tracking import MissingExtra

    path = tmp_path / "hopper.mp4"
    out = subprocess.run(
        [sys.executable, "-c", MUJOCO_VIDEO, str(path)], capture_output=True, text=True
    )
    if out.returncode == 0:
        frames = _frames(path)
        assert len(frames) == 4 and frames.shape[1:3] == video.MUJOCO_SIZE
        assert frames[0].std() > 0
    else:
        last = out.stderr.strip().splitlines()[-1]
        assert "EGL" in last and "OSMesa" in last, out.stderr
    monkeypatch.setattr(video, "_mujoco_gl", lambda: None)
    cfg = SimpleNamespace(env="Hopper-v5", video_every=1)
    with pytest.raises(MissingExtra, match="EGL.*OSMesa"):
        video.check_video(cfg)

import os

import pytest
import torch

from qwr_fast.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def test_round_trip_and_no_temp_files(tmp_path):
    state = {"w": torch.randn(3, 4), "step": 7, "nested": {"rng": torch.get_rng_state()}}
    path = tmp_path / "ckpt_7.pt"
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    assert torch.equal(back["w"], state["w"]) and back["step"] == 7
    assert torch.equal(back["nested"]["rng"], state["nested"]["rng"])
    assert sorted(os.listdir(tmp_path)) == ["ckpt_7.pt"]


def test_overwrite_is_atomic_replace(tmp_path):
    path = tmp_path / "ckpt_1.pt"
    save_checkpoint(path, {"v": 1})
    inode = os.stat(path).st_ino
    save_checkpoint(path, {"v": 2})
    assert load_checkpoint(path)["v"] == 2
    assert os.stat(path).st_ino != inode  # a new file moved into place, not rewritten in place


@pytest.mark.parametrize("damage", ["truncate", "flip", "header", "empty"])
def test_damaged_checkpoint_raises_clear_error(tmp_path, damage):
    path = tmp_path / "ckpt_3.pt"
    save_checkpoint(path, {"w": torch.randn(100)})
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data = data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:]
    elif damage == "header":
        data = b"PK" + data[2:]
    else:
        data = b""
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"ckpt_3\.pt.*(truncated|corrupt)"):
        load_checkpoint(path)


def test_missing_and_latest(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        latest_checkpoint(tmp_path)
    for step in (5, 40, 100, 9):
        save_checkpoint(tmp_path / f"ckpt_{step}.pt", {"s": step})
    (tmp_path / "ckpt_x.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).endswith("ckpt_100.pt")


def test_prune_checkpoints_keeps_the_newest_steps(tmp_path):
    from qwr_fast.checkpoint import latest_checkpoint, prune_checkpoints, save_checkpoint

    for step in (5, 100, 20, 3):
        save_checkpoint(tmp_path / f"ckpt_{step}.pt", {"step": step})
    (tmp_path / "ckpt_notes.pt").write_text("not a step checkpoint")
    prune_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.glob("ckpt_*.pt")) == [
        "ckpt_100.pt",
        "ckpt_20.pt",
        "ckpt_notes.pt",
    ]
    assert latest_checkpoint(tmp_path).endswith("ckpt_100.pt")
    prune_checkpoints(tmp_path, 0)
    assert len(list(tmp_path.glob("ckpt_*.pt"))) == 3


def test_run_files_get_the_umask_mode_not_0600(tmp_path):
    # a shared results directory: checkpoints, config.json and datasets are as readable as
    # any file the user creates (mkstemp alone would give 0600)
    from qwr_fast.trainers.runlog import _write_json

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.pt", {"x": 1})
        _write_json(str(tmp_path / "config.json"), {"a": 1})
    finally:
        os.umask(old)
    for name in ("c.pt", "config.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name

"""``make gpu-check`` (``bench/gpu_check.py``) on a machine without CUDA: one line, exit 2,
nothing run and no report written."""

import importlib.util
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: run make gpu-check")
def test_gpu_check_refuses_without_cuda(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", f"{ROOT}/bench/gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    assert gpu_check.main(["--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA device here" in err[0]
    assert not (tmp_path / "reports").exists()
    assert gpu_check._peaks("NVIDIA H100 80GB HBM3") == (3350.0, 67.0, 989.0)

"""End-to-end tests: train.py --quick then validate.py --quick, and the one-line errors.

The chapter is copied to a temporary folder first, so the tests never touch your own checkpoints.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CHAPTER = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder``."""
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    dst = tmp_path_factory.mktemp("chapter1") / "1.video-encoder-decoder"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


def assert_one_line_error(out: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, a single line on stderr that contains ``words``, and no traceback."""
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


def user_error_in_process(script: str, *args: str) -> str:
    """Run ``script``'s main(args) in this process and return the one-line UserError it must raise.

    For bad inputs that stop a script before any work: no subprocess, so no 3-5 s ``import torch``. The
    exit code 2 and the lone stderr line that ``exit_on_user_error`` makes of any UserError are checked
    on real subprocesses by the other tests here. The script may set torch's threads: put them back.
    """
    import importlib

    from utils import UserError

    threads = torch.get_num_threads()
    try:
        with pytest.raises(UserError) as e:
            importlib.import_module(script).main(list(args))
    finally:
        torch.set_num_threads(threads)
    assert "\n" not in str(e.value), str(e.value)
    return str(e.value)


def test_validate_without_checkpoint_says_run_train_first(chapter_copy):
    assert_one_line_error(run(chapter_copy, "validate.py", "--quick"), "train.py")


def test_out_is_where_validate_looks_for_its_checkpoint(chapter_copy, tmp_path):
    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path))  # nothing trained there yet
    assert_one_line_error(out, str(tmp_path / "checkpoints" / "vae.pt"), f"uv run train.py --out {tmp_path}")
    # (the own-video test in test_own_video.py trains with --out and checks where every file went)


def test_quick_train_then_validate_end_to_end(chapter_copy):
    train = run(chapter_copy, "train.py", "--quick")
    assert train.returncode == 0, train.stderr[-2000:]
    assert train.stdout.splitlines()[0].startswith("torch threads: ")
    assert "next: uv run validate.py --quick" in train.stdout  # from the chapter folder
    assert (chapter_copy / "checkpoints" / "vae.pt").exists() and (
        chapter_copy / "checkpoints" / "fsq.pt"
    ).exists()
    (cache,) = (chapter_copy / "data").iterdir()  # the frames: a Hugging Face dataset, not an .npz
    assert (cache / "dataset_info.json").exists() and not list(chapter_copy.rglob("*.npz"))
    val = run(chapter_copy, "validate.py", "--quick")
    assert val.returncode == 0, val.stderr[-2000:]
    assert val.stdout.splitlines()[0].startswith("torch threads: ")  # the first line: threads, and why
    assert "smoke run (--quick): this checks the plumbing; the numbers are not the lesson's" in val.stdout
    assert re.search(r"^train seconds \d+, validate seconds \d+; targets (PASSED|NOT met)$", val.stdout, re.M)
    report = json.loads((chapter_copy / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "1.video-encoder-decoder" and report["quick"] is True
    for key in ("fsq/psnr_db", "vae/psnr_db", "fsq/codebook_usage", "fsq/centroid_err_dot_px"):
        assert isinstance(report["metrics"][key], float)
    assert "fsq/psnr_db/mean_frame" in report["baselines"]
    assert set(report["targets"]) <= set(report["metrics"]) and isinstance(report["passed"], bool)
    for picture in ("recon_grid.png", "interpolation.png", "prior_samples.png", "fsq_code_usage.png"):
        assert (chapter_copy / "outputs" / picture).stat().st_size > 0
    assert "fsq/psnr_db" in val.stdout  # the printed table


def test_corrupt_and_foreign_checkpoints_are_refused(chapter_copy, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(
        run(chapter_copy, "validate.py", "--quick", "--checkpoint", str(corrupt)), "corrupt.pt"
    )
    foreign = tmp_path / "dynamics.pt"
    torch.save({"model": "dynamics", "state_dict": {}, "config": {}}, foreign)
    assert "dynamics" in user_error_in_process("validate", "--threads", "1", "--checkpoint", str(foreign))


def test_unknown_flag_is_a_usage_error(chapter_copy):
    out = run(chapter_copy, "train.py", "--model", "gan")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr

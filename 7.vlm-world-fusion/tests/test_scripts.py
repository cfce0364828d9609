"""End-to-end tests: train.py --quick, validate.py --quick, and the one-line errors.

The chapter is copied to a temporary folder first, so the tests never touch your own checkpoints.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str, timeout: int = 400, env_extra=None) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder`` (one torch thread: CI machines are small)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    dst = tmp_path_factory.mktemp("chapter7") / "7.vlm-world-fusion"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy, tmp_path_factory) -> Path:
    """The output root of `train.py --quick --out ROOT`, run once in the chapter copy for the module."""
    root = tmp_path_factory.mktemp("chapter7_run") / "run"
    out = run(chapter_copy, "train.py", "--quick", "--out", str(root))
    assert out.returncode == 0, out.stderr[-2000:]
    assert (root / "checkpoints" / "fusion.pt").exists()
    assert "trained in" in out.stdout  # the final one-line summary
    assert "trains" in out.stdout and "%" in out.stdout  # the trainable share is reported
    assert f"validate.py --quick --out {root}" in out.stdout  # the next command keeps --out
    return root


def assert_one_line_error(out: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, a single line on stderr that contains ``words``, and no traceback."""
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_validate_without_checkpoint_says_run_train_first(chapter_copy):
    assert_one_line_error(run(chapter_copy, "validate.py", "--quick"), "train.py")


def test_quick_train_then_validate_end_to_end(chapter_copy, trained):
    val = run(chapter_copy, "validate.py", "--quick", "--out", str(trained))  # its default checkpoint
    assert val.returncode == 0, val.stderr[-2000:]
    assert val.stdout.splitlines()[0].startswith("torch threads: ")  # the first line: threads, and why
    assert "smoke run (--quick): this checks the plumbing; the numbers are not the lesson's" in val.stdout
    assert re.search(r"^train seconds \d+, validate seconds \d+; targets (PASSED|NOT met)$", val.stdout, re.M)
    report = json.loads((trained / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "7.vlm-world-fusion" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    m = report["metrics"]
    for variant in ("random_proj", "fused", "zeroed"):
        for steps in ("0", "k"):
            for kind in ("present", "future"):
                assert 0 <= m[f"{variant}/{steps}/{kind}_acc"] <= 1
    assert 0 <= m["vlm_alone/present_acc"] <= 1 and 0 <= m["vlm_alone/future_acc"] <= 1
    assert 0 < m["trainable_percent"] < 100
    assert "future_acc/copy_present" in report["baselines"]
    assert set(report["targets"]) <= set(m) and isinstance(report["passed"], bool)
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in report["targets"].items())
    for picture in ("fusion_answers.png", "train_loss.png"):
        assert (trained / "outputs" / picture).stat().st_size > 0
    assert "copy_present" in val.stdout and "target" in val.stdout  # the printed table
    # --out routed everything: data as Arrow folders, nothing in the chapter folder
    assert sorted(p.name.split("_")[0] for p in (trained / "data").iterdir()) == ["qa", "qa", "traj"]
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))
    assert not list(trained.rglob("*.npz"))


def test_out_is_where_validate_looks_and_the_default_root_is_the_chapter(chapter_copy, tmp_path):
    from utils import output_root

    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path))  # nothing trained there
    assert_one_line_error(out, "no checkpoint at", "checkpoints/fusion.pt", f"train.py --out {tmp_path}")
    assert output_root("") == CHAPTER and output_root(str(tmp_path)) == tmp_path  # no --out: the chapter


def test_corrupt_and_foreign_checkpoints_are_refused(chapter_copy, tmp_path):
    import torch

    from utils import UserError, load_checkpoint

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(
        run(chapter_copy, "validate.py", "--quick", "--checkpoint", str(corrupt)), "corrupt.pt"
    )
    foreign = tmp_path / "inverse_dynamics.pt"
    torch.save({"model": "inverse-dynamics", "config": {}}, foreign)
    with pytest.raises(UserError, match="inverse-dynamics"):  # in this process: the line is the same
        load_checkpoint(foreign, "vlm-world-fusion")


def test_unknown_lm_and_bad_flags_are_user_errors():
    """Checked in this process (a subprocess costs seconds of torch import; the subprocess tests show
    that a UserError becomes one line and exit code 2)."""
    import train

    from utils import UserError

    with pytest.raises(UserError, match="unknown --lm"):
        train.build_lm(train.parse_args(["--quick", "--lm", "gpt-17"]).lm)
    with pytest.raises(UserError, match="--k"):
        train.parse_args(["--quick", "--k", "0"])
    with pytest.raises(UserError, match="--unfreeze"):
        train.parse_args(["--quick", "--unfreeze", "eyes"])


def test_missing_optional_dependency_names_the_uv_group(chapter_copy, tmp_path):
    (tmp_path / "gguf.py").write_text("raise ImportError('gguf is not installed')\n")  # hide the package
    out = run(chapter_copy, "train.py", "--lm", "gemma3-270m", env_extra={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(out, "uv sync --group gemma")

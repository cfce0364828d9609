"""End-to-end tests: train.py --quick, validate.py --quick, --out, and the one-line errors.

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


def run(folder: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder`` (one torch thread: CI machines are small)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    dst = tmp_path_factory.mktemp("chapter4") / "4.inverse-dynamics"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy, tmp_path_factory) -> Path:
    """The output root of `train.py --quick --out ROOT`, run once in the chapter copy for the module."""
    root = tmp_path_factory.mktemp("chapter4_run") / "run"
    out = run(chapter_copy, "train.py", "--quick", "--out", str(root))
    assert out.returncode == 0, out.stderr[-2000:]
    assert (root / "checkpoints" / "inverse_dynamics.pt").exists()
    assert "trained in" in out.stdout  # the final one-line summary
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
    assert report["chapter"] == "4.inverse-dynamics" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    m = report["metrics"]
    for key in (
        "idm/dot_acc",
        "idm/wall_mae",
        "lam/map_acc_20_labels",
        "lam/delta_tpsnr_db",
        "overlay/read_acc",
    ):
        assert isinstance(m[key], float), key
    for source in ("true", "true_labelled_only", "idm", "lam", "none"):
        assert isinstance(m[f"payoff/{source}/pos_err_10step_px"], float)
    for ablation in ("lam_no_norm", "lam_vq", "lam_plain_mse"):  # one changed choice each, all measured
        assert f"{ablation}/code_perplexity" in m
    assert "idm/dot_acc/chance" in report["baselines"]
    assert "payoff/pos_err_10step_px/copy_last" in report["baselines"]
    assert set(report["targets"]) <= set(m) and isinstance(report["passed"], bool)
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in report["targets"].items())
    for picture in ("lam_confusion.png", "pairs.png", "payoff_dreams.png", "train_loss.png"):
        assert (trained / "outputs" / picture).stat().st_size > 0
    assert "copy_last" in val.stdout and "chance" in val.stdout  # the printed table
    assert (
        len(list((trained / "data").iterdir())) == 4
    )  # --out holds training and held-out data of both worlds
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))  # nothing here


def test_corrupt_and_foreign_checkpoints_are_refused(chapter_copy, tmp_path):
    import torch

    from utils import UserError, load_checkpoint

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(
        run(chapter_copy, "validate.py", "--quick", "--checkpoint", str(corrupt)), "corrupt.pt"
    )
    foreign = tmp_path / "action_dynamics.pt"
    torch.save({"model": "action-dynamics", "config": {}}, foreign)
    with pytest.raises(UserError, match="action-dynamics"):  # in this process: the line is the same
        load_checkpoint(foreign, "inverse-dynamics")


def test_bad_label_fractions_are_user_errors():
    """Checked in this process (a subprocess costs seconds of torch import; the subprocess tests above
    show that a UserError becomes one line and exit code 2)."""
    import train

    from utils import UserError

    with pytest.raises(UserError, match="fraction"):
        train.parse_args(["--quick", "--label-fraction", "1.5"])
    with pytest.raises(UserError, match="--idm-fractions"):
        train.parse_args(["--quick", "--idm-fractions", "a,b"])


def test_unknown_flag_is_a_usage_error(chapter_copy):
    out = run(chapter_copy, "train.py", "--labels-from", "magic")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr


def test_out_is_where_validate_looks_and_the_default_root_is_the_chapter(chapter_copy, tmp_path):
    from utils import output_root

    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path))  # nothing trained there
    assert_one_line_error(out, str(tmp_path / "checkpoints" / "inverse_dynamics.pt"), "--out")
    assert output_root("") == CHAPTER and output_root(str(tmp_path)) == tmp_path  # no --out: the chapter

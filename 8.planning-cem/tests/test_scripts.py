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
    dst = tmp_path_factory.mktemp("chapter8") / "8.planning-cem"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy, tmp_path_factory) -> Path:
    """The output root of `train.py --quick --out ROOT`, run once in the chapter copy (every test below
    reads it: one quick training for the module, not one per test)."""
    root = tmp_path_factory.mktemp("chapter8_run") / "run"
    out = run(chapter_copy, "train.py", "--quick", "--out", str(root))
    assert out.returncode == 0, out.stderr[-2000:]
    assert (root / "checkpoints" / "world_model.pt").exists()
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
    val = run(
        chapter_copy, "validate.py", "--quick", "--out", str(trained)
    )  # the default checkpoint under out
    assert val.returncode == 0, val.stderr[-2000:]
    assert val.stdout.splitlines()[0].startswith("torch threads: ")  # the first line: threads, and why
    assert "smoke run (--quick): this checks the plumbing; the numbers are not the lesson's" in val.stdout
    assert re.search(r"^train seconds \d+, validate seconds \d+; targets (PASSED|NOT met)$", val.stdout, re.M)
    report = json.loads((trained / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "8.planning-cem" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    m = report["metrics"]
    for world in ("wall", "umaze"):
        for planner in ("mpc-cem", "oracle"):
            assert 0.0 <= m[f"success/{world}/{planner}"] <= 1.0
    for planner in ("random", "cem", "gd", "mpc-gd"):
        assert isinstance(m[f"success/wall/{planner}"], float)
    assert m["plan_s/wall/mpc-cem"] > 0 and "success/wall/mpc-cem/random_actions" in report["baselines"]
    assert set(report["targets"]) <= set(m) and isinstance(report["passed"], bool)
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in report["targets"].items())
    for picture in ("episodes.gif", "cem_cost.png", "imagined_vs_true.png", "train_loss.png"):
        assert (trained / "outputs" / picture).stat().st_size > 0
    assert "random_actions" in val.stdout and "target" in val.stdout  # the printed table
    # --out routed everything: the two rooms' trajectories as Hugging Face datasets, nothing in the chapter
    folders = sorted((trained / "data").iterdir())
    assert [p.name.split("_")[0] for p in folders] == ["umaze", "wall"]
    assert all((p / "dataset_info.json").exists() for p in folders)  # save_to_disk's layout
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))
    assert not list(trained.rglob("*.npz"))


def test_out_is_where_validate_looks_and_the_default_root_is_the_chapter(chapter_copy, tmp_path):
    from utils import output_root

    out = tmp_path / "run"
    missing = run(chapter_copy, "validate.py", "--quick", "--out", str(out))  # nothing trained under out
    assert_one_line_error(missing, "no checkpoint at", "checkpoints/world_model.pt", f"train.py --out {out}")
    assert output_root("") == CHAPTER and output_root(str(out)) == out  # no --out: the chapter's folder


def test_one_planner_on_one_environment(chapter_copy, trained):
    out = run(
        chapter_copy, "validate.py", "--planner", "gd", "--env", "umaze", "--episodes", "1", "--n-steps",
        "3", "--gd-steps", "3", "--gd-restarts", "2", "--out", str(trained),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((trained / "outputs" / "metrics.json").read_text())["metrics"]
    assert set(m) == {"success/umaze/gd", "final_dist/umaze/gd", "plan_s/umaze/gd"}


def test_a_corrupt_checkpoint_is_a_one_line_error(chapter_copy, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    out = run(chapter_copy, "validate.py", "--quick", "--checkpoint", str(corrupt))
    assert_one_line_error(out, "corrupt.pt")


# The checks below call the scripts' own functions in this process (a subprocess costs seconds of torch
# import each); exit_on_user_error, which turns a UserError into one line and exit code 2, is covered by
# the two subprocess tests above.


def test_a_foreign_checkpoint_is_refused(tmp_path):
    import torch

    from utils import UserError, load_checkpoint

    foreign = tmp_path / "inverse_dynamics.pt"
    torch.save({"model": "inverse-dynamics", "config": {}}, foreign)
    with pytest.raises(UserError, match="inverse-dynamics"):
        load_checkpoint(foreign, "planning-world-model")


def test_unknown_planner_environment_and_bad_values_are_user_errors():
    import train
    import validate

    from utils import UserError

    for argv, words in (
        (["--planner", "mppi"], r"unknown planner 'mppi'.*mpc-cem"),
        (["--env", "maze"], r"unknown environment 'maze'.*umaze"),
        (["--elites", "500"], "--elites"),
        (["--distance", "manhattan"], "--distance learned"),
    ):
        with pytest.raises(UserError, match=words):
            validate.parse_args(argv)
    with pytest.raises(UserError, match="--window"):
        train.parse_args(["--window", "1"])


def test_a_goal_image_of_the_wrong_shape_is_a_user_error(tmp_path):
    from PIL import Image
    from validate import read_goal_image

    from utils import UserError

    picture = tmp_path / "goal.png"
    Image.new("RGB", (96, 96)).save(picture)
    with pytest.raises(UserError, match=r"\(64, 64, 3\), got \(96, 96, 3\)"):
        read_goal_image(str(picture))
    Image.new("RGB", (64, 64)).save(picture)  # right size, but no agent in it
    with pytest.raises(UserError, match="no agent"):
        read_goal_image(str(picture))


def test_no_module_imports_the_validate_script():
    """validate.py is the top of the chapter: nothing imports it back (pusht.py once did, a cycle)."""
    import ast

    for path in [*CHAPTER.glob("*.py"), *CHAPTER.glob("*/*.py")]:
        if path.name == "validate.py" or path.parent.name == "tests":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) else []
            assert "validate" not in names, f"{path.name} imports validate"

"""End-to-end tests: train.py --quick, validate.py --quick, and the one-line errors.

The chapter is copied to a temporary folder first, so the tests never touch your own checkpoints.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str, env=None, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder`` (one torch thread: CI machines are small)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    dst = tmp_path_factory.mktemp("chapter5") / "5.dino-predictor"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy, tmp_path_factory) -> Path:
    """The output root of `train.py --quick --out ROOT`, run once in the chapter copy for the module."""
    root = tmp_path_factory.mktemp("chapter5_run") / "run"
    out = run(chapter_copy, "train.py", "--quick", "--out", str(root))
    assert out.returncode == 0, out.stderr[-2000:]
    assert (root / "checkpoints" / "dino_wm.pt").exists()
    last = out.stdout.splitlines()[-1]
    assert last == f"next: uv run validate.py --quick --out {root}", out.stdout[-500:]  # keeps --out
    return root


def assert_one_line_error(out: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, a single line on stderr that contains ``words``, and no traceback."""
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_validate_without_checkpoint_says_run_train_first(chapter_copy):
    out = run(chapter_copy, "validate.py", "--quick", "--threads", "1")
    assert out.stdout.splitlines()[0].startswith("torch threads: 1 (set by --threads"), out.stdout
    assert_one_line_error(out, "train.py")


def test_quick_train_then_validate_end_to_end(chapter_copy, trained):
    val = run(chapter_copy, "validate.py", "--quick", "--out", str(trained))  # its default checkpoint
    assert val.returncode == 0, val.stderr[-2000:]
    report = json.loads((trained / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "5.dino-predictor" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    m, b = report["metrics"], report["baselines"]
    for h in range(1, 6):
        assert isinstance(m[f"feat_err_h{h}"], float) and f"feat_err_h{h}/copy_last" in b
    for name in ("random", "pixels", "oracle"):  # the encoder comparison and the upper bound
        assert 0.0 <= b[f"goal_success/{name}"] <= 1.0 and b[f"goal_final_dist/{name}"] >= 0
    assert m["nomask_over_mask_err_h5"] > 0 and -1 <= m["cost_slope"] <= 1
    assert set(report["targets"]) <= set(m) and len(report["targets"]) == 4
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in report["targets"].items())
    for picture in (
        "rollout.gif",
        "rollout.png",
        "goal_reaching.png",
        "train_loss.png",
        "world.png",
        "cost_landscape.png",
    ):
        assert (trained / "outputs" / picture).stat().st_size > 0
    assert "copy-last" in val.stdout and "random-init ViT" in val.stdout  # the printed tables
    assert "smoke run" in val.stdout
    assert any((trained / "data").iterdir())  # --out routed the data too, and nothing went into the chapter
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))


def test_out_is_where_validate_looks_and_the_default_root_is_the_chapter(chapter_copy, tmp_path):
    from utils import output_root

    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path))  # nothing trained there
    assert_one_line_error(out, f"no checkpoint at {tmp_path / 'checkpoints' / 'dino_wm.pt'}")
    assert output_root("") == CHAPTER and output_root(str(tmp_path)) == tmp_path  # no --out: the chapter


def test_ceiling_plans_every_encoder_with_the_true_future(chapter_copy, trained):
    val = run(chapter_copy, "validate.py", "--quick", "--ceiling", "--out", str(trained))
    assert val.returncode == 0, val.stderr[-2000:]
    b = json.loads((trained / "outputs" / "metrics.json").read_text())["baselines"]
    for name in ("dino", "random", "pixels"):
        assert 0.0 <= b[f"goal_success/{name}_true_future"] <= 1.0
    assert "our DINO, true future" in val.stdout


def test_unavailable_dinov2_is_one_line(chapter_copy, tmp_path):
    """No network (a proxy on a closed port) and an empty hub cache: a hint, not a traceback."""
    proxy = "http://127.0.0.1:9"
    env = {"TORCH_HOME": str(tmp_path), "HTTPS_PROXY": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy}
    out = run(chapter_copy, "train.py", "--quick", "--encoder", "dinov2_vits14", env=env)
    assert_one_line_error(out, "dinov2_vits14", "--encoder dino")


def call_main(script: str, *args: str, capsys) -> str:
    """Run ``script``'s main in this process (no torch re-import: fast) and return its one stderr line.

    The subprocess tests show the same path end to end (exit code 2, one line, no traceback)."""
    import importlib

    from utils import exit_on_user_error

    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(lambda: module.main(list(args)))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_bad_settings_and_checkpoints_are_one_line_errors(chapter_copy, tmp_path, capsys):
    import torch

    assert "--traj-len" in call_main("train", "--quick", "--traj-len", "3", "--num-hist", "3", capsys=capsys)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(run(chapter_copy, "validate.py", "--checkpoint", str(corrupt)), "corrupt.pt")
    foreign = tmp_path / "fsq.pt"
    torch.save({"model": "fsq", "state_dict": {}, "config": {}}, foreign)
    assert "fsq" in call_main("validate", "--checkpoint", str(foreign), capsys=capsys)
    old_world = tmp_path / "point_mass.pt"  # a checkpoint of this chapter from its point-mass days
    torch.save({"model": "dino-wm", "config": {"world": "wall"}, "encoders": {}}, old_world)
    line = call_main("validate", "--checkpoint", str(old_world), capsys=capsys)
    assert "'wall'" in line and "train.py" in line


def test_unknown_encoder_is_a_usage_error(chapter_copy):
    out = run(chapter_copy, "train.py", "--encoder", "moon")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr


def test_threads_follow_the_free_cores(monkeypatch):
    from utils import choose_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads(0, cores=2, load=0.2) == (2, "2 cores, load 0.2")  # a free laptop: both cores
    assert choose_threads(0, cores=2, load=1.3)[0] == 1  # one core busy elsewhere: one thread
    assert choose_threads(0, cores=2, load=6.0)[0] == 1  # never fewer than one
    assert choose_threads(3, cores=2, load=6.0) == (3, "set by --threads")  # the flag wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(0, cores=8, load=0.0) == (1, "set by OMP_NUM_THREADS")


def test_quick_keeps_the_flags_you_typed():
    import train
    import validate

    assert validate.parse_args(["--quick"]).episodes == 2
    assert validate.parse_args(["--quick", "--episodes", "7"]).episodes == 7
    assert train.parse_args(["--quick"]).pred_steps == 6
    assert train.parse_args(["--quick", "--pred-steps", "9"]).pred_steps == 9


def test_bad_planner_sizes_are_one_line_errors(capsys):
    assert "--episodes 0" in call_main("validate", "--episodes", "0", capsys=capsys)
    assert "--elites 99" in call_main("validate", "--quick", "--elites", "99", capsys=capsys)
    assert "no such file: no-such.pt" in call_main("validate", "--checkpoint", "no-such.pt", capsys=capsys)

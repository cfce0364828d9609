"""End-to-end tests: train.py --quick, validate.py --quick, torchrun with 2 CPU processes, the errors.

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
TINY = [
    "--n-traj",
    "16",
    "--traj-len",
    "8",
    "--pretrain-steps",
    "3",
    "--collapse-steps",
    "2",
    "--ac-steps",
    "2",
]


def run(folder: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder`` (one torch thread: CI machines are small)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    dst = tmp_path_factory.mktemp("chapter6") / "6.jepa-masked-video"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy, tmp_path_factory) -> Path:
    """The output root of `train.py --quick --out ROOT`, run once in the chapter copy for the module."""
    root = tmp_path_factory.mktemp("chapter6_run") / "run"
    out = run(chapter_copy, "train.py", "--quick", "--out", str(root))
    assert out.returncode == 0, out.stderr[-2000:]
    assert (root / "checkpoints" / "jepa.pt").exists()
    assert "trained in" in out.stdout  # the final one-line summary
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
    assert_one_line_error(out, "no checkpoint at", "uv run train.py")


def test_quick_train_then_validate_end_to_end(chapter_copy, trained):
    val = run(chapter_copy, "validate.py", "--quick", "--out", str(trained))  # its default checkpoint
    assert val.returncode == 0, val.stderr[-2000:]
    report = json.loads((trained / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "6.jepa-masked-video" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    m, b = report["metrics"], report["baselines"]
    for key in (
        "probe/motion_acc",
        "probe/acc_gain_over_random_init",
        "probe/acc_gain_std",
        "spread/ratio_to_step0",
        "spread/no_ema_ratio_to_step0",
        "masked_loss",
        "ac/err_h4",
        "energy/slope",
        "plan/success_energy_only",
        "plan/gain_over_random_init",
    ):
        assert isinstance(m[key], float), key
    for key in ("probe/motion_acc/random_init", "masked_loss/ema_as_context", "ac/err_h4/copy_last"):
        assert isinstance(b[key], float), key
    for mode in ("random_init", "oracle"):  # the planner's baselines, the oracle as upper bound
        assert isinstance(b[f"plan/success_energy_only/{mode}"], float), mode
    assert report["n_tasks"] == 2 and len(report["success_ci95"]["jepa"]) == 2
    assert set(report["targets"]) <= set(m) and isinstance(report["passed"], bool)
    ok = {"<=": lambda x, t: x <= t, ">=": lambda x, t: x >= t}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in report["targets"].items())
    for picture in ("masks.png", "collapse.png", "energy_landscape.png", "plans.png", "train_loss.png"):
        assert (trained / "outputs" / picture).stat().st_size > 0
    assert "copy_last" in val.stdout and "random_init" in val.stdout  # the printed table
    assert any((trained / "data").iterdir())  # --out routed the data too, and nothing went into the chapter
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))
    lines = val.stdout.splitlines()
    assert lines[0] == "torch threads: 1 (set by OMP_NUM_THREADS; --threads N to override)", lines[0]
    assert "smoke run (--quick)" in val.stdout
    verdict = "PASSED" if report["passed"] else "NOT met"
    assert any(x.startswith("train seconds ") and x.endswith(f"; targets {verdict}") for x in lines), lines


def test_out_is_where_validate_looks_and_the_default_root_is_the_chapter(chapter_copy, tmp_path):
    from utils import output_root

    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path))  # nothing trained there
    assert_one_line_error(out, f"no checkpoint at {tmp_path / 'checkpoints' / 'jepa.pt'}")
    assert output_root("") == CHAPTER and output_root(str(tmp_path)) == tmp_path  # no --out: the chapter


def test_ceiling_plans_both_encoders_with_the_true_future(chapter_copy, trained):
    val = run(chapter_copy, "validate.py", "--quick", "--ceiling", "--out", str(trained))
    assert val.returncode == 0, val.stderr[-2000:]
    b = json.loads((trained / "outputs" / "metrics.json").read_text())["baselines"]
    for name in ("jepa", "random_init"):
        assert 0.0 <= b[f"plan/success_energy_only/{name}_true_future"] <= 1.0
    assert "jepa_true_future" in val.stdout


def test_torchrun_two_cpu_processes(chapter_copy):
    """DDP: 2 gloo processes train a few steps; only rank 0 writes the checkpoint."""
    ckpt = chapter_copy / "checkpoints" / "jepa.pt"
    ckpt.unlink(missing_ok=True)
    args = ["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29561", "train.py"]
    out = run(chapter_copy, *args, *TINY, "--batch", "4", "--ac-batch", "4", "--device", "cpu")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("trained in") == 1 and "2 process(es)" in out.stdout
    first = out.stdout.splitlines()[0]  # rank 0 alone says it, first: one thread per process
    assert first.startswith("torch threads: 1 (one per process: 2 processes under torchrun"), first
    assert out.stdout.count("torch threads:") == 1, out.stdout
    import torch

    saved = torch.load(ckpt, weights_only=True)
    assert saved["config"]["world_size"] == 2 and "context_encoder" in saved  # masked loss needs it


def call_main(script: str, *args: str, capsys) -> str:
    """Run ``script``'s main in this process (no torch re-import: fast) and return its one stderr line.

    The subprocess test above shows the same path end to end (exit code 2, one line, no traceback)."""
    import importlib

    from utils import exit_on_user_error

    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(lambda: module.main(list(args)))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path, capsys):
    import torch

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert "corrupt.pt" in call_main("validate", "--quick", "--checkpoint", str(corrupt), capsys=capsys)
    foreign = tmp_path / "dino.pt"
    torch.save({"model": "dino-predictor", "config": {}}, foreign)
    assert "dino-predictor" in call_main("validate", "--checkpoint", str(foreign), capsys=capsys)


def test_bad_inputs_are_one_line_errors(capsys):
    assert "--frames" in call_main("train", "--quick", "--frames", "7", capsys=capsys)
    assert "--patch" in call_main("train", "--quick", "--patch", "12", capsys=capsys)
    assert "--elites" in call_main("validate", "--quick", "--elites", "99", capsys=capsys)


def test_threads_follow_the_free_cores(monkeypatch, capsys):
    import torch

    from utils import choose_threads, set_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads(0, cores=2, load=0.2) == (2, "2 cores, load 0.2")  # a free laptop: both cores
    assert choose_threads(0, cores=2, load=1.3)[0] == 1  # one core busy elsewhere: one thread
    assert choose_threads(0, cores=2, load=6.0)[0] == 1  # never fewer than one
    assert choose_threads(3, cores=2, load=6.0) == (3, "set by --threads")  # the flag wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(0, cores=8, load=0.0) == (1, "set by OMP_NUM_THREADS")
    before = torch.get_num_threads()
    try:  # under torchrun: one thread per process unless --threads says otherwise; rank 1 stays quiet
        monkeypatch.setenv("OMP_NUM_THREADS", "4")  # torchrun's own setting must not count
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "0")
        assert set_threads(0) == 1 and "one per process: 2 processes" in capsys.readouterr().out
        assert set_threads(2) == 2 and "set by --threads, per process" in capsys.readouterr().out
        monkeypatch.setenv("RANK", "1")
        assert set_threads(0) == 1 and capsys.readouterr().out == ""
    finally:
        torch.set_num_threads(before)


def test_quick_keeps_the_flags_you_typed():
    import train
    import validate

    assert validate.parse_args(["--quick"]).episodes == 2
    assert validate.parse_args(["--quick", "--episodes", "7"]).episodes == 7
    assert validate.parse_args(["--quick", "--probe-steps", "600"]).probe_steps == 600  # = the default
    assert train.parse_args(["--quick"]).pretrain_steps == 12
    assert train.parse_args(["--quick", "--pretrain-steps", "9"]).pretrain_steps == 9
    assert train.parse_args(["--quick", "--n-traj", "500"]).n_traj == 500  # typed, though the default


def test_bad_sizes_and_missing_files_are_one_line_errors(capsys):
    assert "got 0" in call_main("validate", "--episodes", "0", capsys=capsys)
    assert "--probe-steps" in call_main("validate", "--quick", "--probe-steps", "-1", capsys=capsys)
    assert "no such file: no-such.pt" in call_main("validate", "--checkpoint", "no-such.pt", capsys=capsys)

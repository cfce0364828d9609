"""End-to-end tests: train.py --quick then validate.py --quick, and the one-line errors.

The chapter is copied to a temporary folder first, so the tests never touch your own checkpoints.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder: the shared helpers
from script_helpers import (  # noqa: E402
    assert_one_line_error,
    copy_chapter,
    run,
    run_watched,
    user_error_in_process,
)

MAX_SILENCE_S = 10.0  # the longest a quick run may print nothing


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    return copy_chapter(tmp_path_factory.mktemp("chapter2") / "2.latent-dynamics")


def test_validate_without_checkpoint_says_run_train_first(chapter_copy):
    assert_one_line_error(run(chapter_copy, "validate.py", "--quick"), "train.py")


def test_a_missing_checkpoint_under_out_is_one_line(chapter_copy, tmp_path):
    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path / "nothing here"))
    assert_one_line_error(
        out, str(tmp_path / "nothing here" / "checkpoints" / "dynamics.pt"), "train.py --out"
    )


def test_the_silence_meter_sees_a_pause(tmp_path):
    """run_watched itself: a script that prints, sleeps 3 s and prints again was silent for 3 s."""
    script = "import sys, time\nprint('a')\ntime.sleep(3)\nprint('b', file=sys.stderr)\n"
    (tmp_path / "pause.py").write_text(script)
    out = run_watched(tmp_path, "pause.py")
    assert out.returncode == 0 and out.stdout.split() == ["a"] and out.stderr.split() == ["b"]
    assert 2.9 <= out.longest_silence < 6, out.longest_silence


def test_quick_train_then_validate_end_to_end(chapter_copy, tmp_path):
    """The whole pipeline on tiny data, and never more than MAX_SILENCE_S without output: a learner who
    sees nothing for a minute thinks the script hangs."""
    out = tmp_path / "runs"  # --out: the pipeline writes here and nowhere in the chapter folder
    train = run_watched(chapter_copy, "train.py", "--quick", "--threads", "1", "--out", str(out))
    assert train.returncode == 0, train.stderr[-2000:]
    assert train.longest_silence <= MAX_SILENCE_S, f"silent for {train.longest_silence:.1f} s"
    assert train.stdout.splitlines()[0].startswith("torch threads: ")
    assert f"next: uv run validate.py --quick --out {out}" in train.stdout  # from the chapter folder
    assert (out / "checkpoints" / "dynamics.pt").exists() and (out / "checkpoints" / "codec.pt").exists()
    val = run_watched(chapter_copy, "validate.py", "--quick", "--threads", "1", "--out", str(out))
    assert val.returncode == 0, val.stderr[-2000:]
    assert val.longest_silence <= MAX_SILENCE_S, f"silent for {val.longest_silence:.1f} s"
    assert val.stdout.splitlines()[0].startswith("torch threads: ")  # the first line: threads, and why
    assert "smoke run (--quick): this checks the plumbing; the numbers are not the lesson's" in val.stdout
    assert re.search(r"^train seconds \d+, validate seconds \d+; targets (PASSED|NOT met)$", val.stdout, re.M)
    report = json.loads((out / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "2.latent-dynamics" and report["quick"] is True
    for key in ("mse_h10_over_copy_last", "ball_err_h5_px", "ctx1_over_ctx3_ball_err_h1"):
        assert isinstance(report["metrics"][key], float)
    assert "ball_err_h10_px/copy_last" in report["baselines"]
    assert set(report["targets"]) <= set(report["metrics"]) and isinstance(report["passed"], bool)
    for picture in ("rollouts.gif", "error_vs_horizon.png", "diagnosis.png", "train_loss.png"):
        assert (out / "outputs" / picture).stat().st_size > 0
    assert "copy_last" in val.stdout  # the printed table
    assert sorted(p.name for p in (out / "data").iterdir()) == [  # the two video caches, as Arrow folders
        "balls_n24_len16_seed0_62892f3a",
        "balls_n8_len23_seed10000_f87fbc29",
    ]
    assert not list(out.rglob("*.npz"))
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))


def test_corrupt_and_foreign_checkpoints_are_refused(chapter_copy, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(
        run(chapter_copy, "validate.py", "--quick", "--checkpoint", str(corrupt)), "corrupt.pt"
    )
    foreign = tmp_path / "vae.pt"
    torch.save({"model": "vae", "state_dict": {}, "config": {}}, foreign)
    # in-process: both stop at the checkpoint's kind, before any work (no subprocess importing torch)
    assert "vae" in user_error_in_process("validate", "--threads", "1", "--checkpoint", str(foreign))
    flags = ["--quick", "--threads", "1", "--init-from", str(foreign), "--out", str(tmp_path / "run")]
    assert "fsq" in user_error_in_process("train", *flags)
    assert not (tmp_path / "run").exists()  # refused before the data


def test_unknown_flag_is_a_usage_error(chapter_copy):
    out = run(chapter_copy, "train.py", "--head", "gan")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr

"""End-to-end tests: train.py --quick, validate.py --quick, play.py, --out, --data, and the one-line errors.

The chapter is copied to a temporary folder first, so the tests never touch your own checkpoints.
"""

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str, env=None, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder`` (one torch thread: CI machines are small)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )


MAX_SILENCE_S = 10.0  # the longest a quick run may print nothing


def run_watched(folder: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """Like ``run``, and also measure the longest time the script printed nothing (``.longest_silence``,
    seconds, on stdout and stderr together, as a terminal shows them).

    A learner who sees nothing for a minute thinks the script hangs, so every loop longer than a few
    seconds shows a progress bar. PYTHONUNBUFFERED=1 makes the pipes behave like a terminal (Python
    would otherwise hold printed lines back), and a tqdm bar redraws with a carriage return, so bytes
    are read, not lines.
    """
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env |= {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    start = last = time.monotonic()
    longest, chunks = 0.0, {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
    open_fds = set(chunks)
    while open_fds:
        if time.monotonic() - start > timeout:
            proc.kill()
            raise subprocess.TimeoutExpired(args, timeout)
        ready, _, _ = select.select(list(open_fds), [], [], 1.0)  # wake up every second even if silent
        now = time.monotonic()
        longest = max(longest, now - last)
        for fd in ready:
            chunk = os.read(fd, 4096)
            if chunk:
                chunks[fd], last = chunks[fd] + chunk, now
            else:  # end of this stream
                open_fds.discard(fd)
    out = subprocess.CompletedProcess(
        args, proc.wait(timeout=30), chunks[proc.stdout.fileno()].decode(errors="replace"),
        chunks[proc.stderr.fileno()].decode(errors="replace"),
    )  # fmt: skip
    out.longest_silence = longest
    return out


def test_the_silence_meter_sees_a_pause(tmp_path):
    """run_watched itself: a script that prints, sleeps 3 s and prints again was silent for 3 s."""
    script = "import sys, time\nprint('a')\ntime.sleep(3)\nprint('b', file=sys.stderr)\n"
    (tmp_path / "pause.py").write_text(script)
    out = run_watched(tmp_path, "pause.py")
    assert out.returncode == 0 and out.stdout.split() == ["a"] and out.stderr.split() == ["b"]
    assert 2.9 <= out.longest_silence < 6, out.longest_silence


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    dst = tmp_path_factory.mktemp("chapter3") / "3.action-conditioning"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy) -> Path:
    """The chapter copy after `train.py --quick`, which never goes MAX_SILENCE_S without output."""
    out = run_watched(chapter_copy, "train.py", "--quick")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.longest_silence <= MAX_SILENCE_S, (
        f"train.py --quick was silent for {out.longest_silence:.1f} s"
    )
    assert (chapter_copy / "checkpoints" / "action_dynamics.pt").exists()
    return chapter_copy


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

    import torch

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


def test_quick_train_then_validate_end_to_end(trained):
    val = run_watched(trained, "validate.py", "--quick")
    assert val.returncode == 0, val.stderr[-2000:]
    assert val.longest_silence <= MAX_SILENCE_S, (
        f"validate.py --quick was silent for {val.longest_silence:.1f} s"
    )
    assert val.stdout.splitlines()[0].startswith("torch threads: ")  # the first line: threads, and why
    assert "smoke run (--quick): this checks the plumbing; the numbers are not the lesson's" in val.stdout
    final = r"^train seconds \d+ \(\d+ CPU-seconds\), validate seconds \d+ \(\d+ CPU-seconds\); targets "
    final += r"(PASSED|NOT met)$"
    assert re.search(final, val.stdout, re.M)
    report = json.loads((trained / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "3.action-conditioning" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    for world in ("dot", "wall"):
        assert isinstance(report["metrics"][f"{world}/pos_err_10step_px"], float)
        assert f"{world}/pos_err_10step_px/copy_last" in report["baselines"]
        assert f"{world}/pos_err_10step_px/shuffled_actions" in report["baselines"]
        for method in ("concat", "token", "film_cmp"):  # the comparison of conditionings, equal steps
            assert f"{world}/{method}/pos_err_10step_px" in report["metrics"]
        assert f"{world}/counterfactual_spread/truth" in report["baselines"]  # the spread's scale
    assert (
        0 <= report["metrics"]["wall/blocked_stays_acc"] <= 1
        or report["baselines"]["wall/blocked_stays_acc/pushes"] == 0
    )
    assert set(report["targets"]) <= set(report["metrics"]) and isinstance(report["passed"], bool)
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    assert report["passed"] == all(
        ok[op](report["metrics"][k], t) for k, (op, t) in report["targets"].items()
    )
    for picture in ("counterfactual_dot.png", "counterfactual_wall.png", "train_loss.png"):
        assert (trained / "outputs" / picture).stat().st_size > 0
    assert "copy_last" in val.stdout and "shuffled_actions" in val.stdout  # the printed table


def test_play_headless_writes_a_gif(trained):
    out = run(trained, "play.py", "--headless", "--actions", "RRUL.D")
    assert out.returncode == 0, out.stderr[-2000:]
    gif = trained / "outputs" / "play_dot.gif"
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 7  # the start frame and six dreamed steps
    assert_one_line_error(run(trained, "play.py", "--headless", "--actions", "RXQ"), "--actions")


def test_play_without_display_gives_a_hint(trained):
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    assert_one_line_error(run(trained, "play.py", env=env), "--headless")


def test_corrupt_and_foreign_checkpoints_are_refused(chapter_copy, tmp_path):
    import torch

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(
        run(chapter_copy, "validate.py", "--quick", "--checkpoint", str(corrupt)), "corrupt.pt"
    )
    foreign = tmp_path / "fsq.pt"
    torch.save({"model": "fsq", "state_dict": {}, "config": {}}, foreign)
    assert "fsq" in user_error_in_process("validate", "--threads", "1", "--checkpoint", str(foreign))


def test_unknown_flag_is_a_usage_error(chapter_copy):
    out = run(chapter_copy, "train.py", "--conditioning", "magic")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr


def own_dataset(path: Path, frames: int = 6, episodes: int = 8, size: int = 64) -> Path:
    """A learner's dataset recorded from this chapter's dot env: the README's schema, saved with datasets."""
    import datasets
    import numpy as np

    from data_utils import make_env

    env, rng = make_env("dot"), np.random.default_rng(0)
    video, actions = [], []
    for i in range(episodes):
        frame, _ = env.reset(seed=i)
        acts = rng.integers(0, 5, frames - 1)
        video.append([frame] + [env.step(int(a))[0] for a in acts])
        actions.append(acts)
    video = np.array(video)[:, :, :size, :size]  # (episodes, frames, size, size, 3) uint8
    features = datasets.Features(
        {
            "frames": datasets.Array4D((frames, size, size, 3), "uint8"),
            "actions": datasets.Sequence(datasets.Value("int64"), length=frames - 1),
        }
    )
    datasets.Dataset.from_dict({"frames": list(video), "actions": actions}, features=features).save_to_disk(
        str(path)
    )
    return path


def test_train_on_a_learners_dataset_with_out(chapter_copy, tmp_path):
    data, out = own_dataset(tmp_path / "my_data"), tmp_path / "run"
    res = run(chapter_copy, "train.py", "--quick", "--data", str(data), "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "--data: 8 episodes of 6 frames, discrete actions" in res.stdout
    assert (out / "checkpoints" / "action_dynamics.pt").exists()  # --out: nothing in the chapter folder
    assert (out / "outputs" / "train_loss.png").stat().st_size > 0
    assert_one_line_error(run(chapter_copy, "validate.py", "--out", str(out)), "own dataset")


def test_a_learners_dataset_with_the_wrong_shape_is_one_line(tmp_path):
    data = own_dataset(tmp_path / "small", size=32)
    flags = ["--quick", "--threads", "1", "--data", str(data), "--out", str(tmp_path / "run")]
    error = user_error_in_process("train", *flags)
    assert "--data" in error and "(T, 64, 64, 3)" in error, error
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_out_moves_the_default_checkpoint(chapter_copy, tmp_path):
    out = run(chapter_copy, "validate.py", "--quick", "--out", str(tmp_path))
    assert_one_line_error(out, str(tmp_path / "checkpoints" / "action_dynamics.pt"), "--out")

"""End-to-end: train.py --quick then validate.py --quick, resume, one-line errors, the session explorer
on a recorded fixture session, and the JetBot example's error when no robot answers.

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


def run(folder: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder`` (one torch thread: CI machines are small)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DISPLAY", None)  # headless: the learner writes view.png instead of opening a window
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no checkpoints, outputs or recordings)."""
    dst = tmp_path_factory.mktemp("chapter9") / "9.jetbot-adaptive"
    ignore = shutil.ignore_patterns("checkpoints", "outputs", "saved", "recordings", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def trained(chapter_copy) -> Path:
    """The chapter copy after `train.py --quick`."""
    out = run(chapter_copy, "train.py", "--quick")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (chapter_copy / "checkpoints" / "toroidal_dot" / "predictor.pth").exists()
    lines = out.stdout.splitlines()
    assert lines[0] == "torch threads: 1 (set by OMP_NUM_THREADS; --threads N to override)", lines[0]
    assert "trained in" in lines[-2] and lines[-1] == "next: uv run validate.py --quick", lines[-2:]
    return chapter_copy


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
    assert_one_line_error(out, "no checkpoint in", "uv run train.py")


def test_bad_flags_are_one_line_errors(chapter_copy):
    assert_one_line_error(run(chapter_copy, "train.py", "--steps", "0"), "--steps")
    out = run(chapter_copy, "train.py", "--codec", "magic")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr


def test_quick_train_then_validate_end_to_end(trained):
    val = run(trained, "validate.py", "--quick")
    assert val.returncode == 0, val.stderr[-2000:]
    report = json.loads((trained / "outputs" / "metrics.json").read_text())
    assert report["chapter"] == "9.jetbot-adaptive" and report["quick"] is True
    for key in ("chapter", "quick", "device", "train_seconds", "metrics", "baselines", "targets", "passed"):
        assert key in report
    m, b = report["metrics"], report["baselines"]
    for key in ("pos_within_2px/both_actions", "r2_patch", "action_acc", "loop_steps_per_second"):
        assert isinstance(m[key], float), key
    assert b["pos_within_2px/both_actions/copy_last"] == 0.0  # copying is always 7 px off for "move"
    ok = {"<=": lambda x, t: x <= t, ">=": lambda x, t: x >= t}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in report["targets"].items())
    assert (trained / "outputs" / "predictions.png").stat().st_size > 0
    assert "copy_last" in val.stdout and "chance" in val.stdout
    lines = val.stdout.splitlines()
    assert lines[0].startswith("torch threads: 1 ") and "smoke run (--quick)" in val.stdout, lines[:2]
    verdict = "PASSED" if report["passed"] else "NOT met"
    assert lines[-1].startswith("train seconds ") and lines[-1].endswith(f"; targets {verdict}"), lines[-1]


def test_out_moves_outputs_and_the_default_checkpoint(trained, tmp_path):
    out = run(trained, "validate.py", "--quick", "--out", str(tmp_path))  # no checkpoint under tmp_path
    assert_one_line_error(out, f"no checkpoint in {tmp_path / 'checkpoints' / 'toroidal_dot'}")
    ck = str(trained / "checkpoints" / "toroidal_dot")
    val = run(trained, "validate.py", "--quick", "--out", str(tmp_path), "--checkpoint", ck)
    assert val.returncode == 0, val.stderr[-2000:]
    assert json.loads((tmp_path / "outputs" / "metrics.json").read_text())["quick"] is True
    assert (tmp_path / "outputs" / "predictions.png").stat().st_size > 0


def test_quick_comparisons_are_printed_by_validate(trained):
    out = run(trained, "train.py", "--quick", "--compare")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((trained / "outputs" / "compare.json").read_text())
    assert list(report["variants"]) == ["default", "random_actions", "concat", "action_grad"]
    assert report["steps"] == 12 and report["variants"]["random_actions"]["curve"][-1]["step"] == 12
    val = run(trained, "validate.py", "--quick")
    assert val.returncode == 0, val.stderr[-2000:]
    for word in (
        "comparisons:",
        "random_actions",
        "concat",
        "action_grad",
        "attention/APA",
        "attention/RI@16",
    ):
        assert word in val.stdout, word
    assert "comparisons" in json.loads((trained / "outputs" / "metrics.json").read_text())


def test_compare_without_a_checkpoint_is_one_line(chapter_copy, tmp_path):
    out = run(chapter_copy, "train.py", "--compare", "--checkpoint-dir", str(tmp_path / "none"))
    assert_one_line_error(out, "no checkpoint in", "then --compare")


def test_restart_resumes_at_the_saved_step_and_backup_saves_a_corrupt_primary(trained, tmp_path):
    ckpt = trained / "checkpoints" / "toroidal_dot"
    saved = json.loads((ckpt / "state.json").read_text())["step"]
    # a restart continues from the saved step; its own save rotates the first set to *_backup
    out = run(trained, "train.py", "--quick", "--steps", str(saved + 3))
    assert out.returncode == 0 and f"resumed at step {saved}" in out.stdout, out.stdout[-1000:]
    assert (ckpt / "predictor_backup.pth").exists()
    copy = tmp_path / "ckpt"
    shutil.copytree(ckpt, copy)
    (copy / "predictor.pth").write_bytes(b"half a file")
    val = run(trained, "validate.py", "--quick", "--episodes", "1", "--checkpoint", str(copy))
    assert val.returncode == 0 and "backup" in val.stdout, val.stderr[-1000:]
    (copy / "predictor_backup.pth").write_bytes(b"half a file")
    assert_one_line_error(run(trained, "validate.py", "--checkpoint", str(copy)), "no usable checkpoint")


def test_explorer_commands_on_a_recorded_session(trained, tmp_path, capsys):
    from learner.explorer import session_explorer
    from robots import ToroidalDotConfig, ToroidalDotRobot
    from robots.recording import RecordingRobot

    robot = RecordingRobot(ToroidalDotRobot(ToroidalDotConfig(seed=5)), root=tmp_path)
    for i in range(12):
        robot.get_observation()
        robot.execute_action({"action": (i // 2) % 2})
    robot.get_observation()
    robot.cleanup()
    ck = str(trained / "checkpoints" / "toroidal_dot")
    common = ["0", "--root", str(tmp_path), "--checkpoint", ck, "--out", str(tmp_path / "pictures")]
    session_explorer.main(["sessions", "--root", str(tmp_path)])
    assert "toroidal_dot" in capsys.readouterr().out
    session_explorer.main(["actions", *common])
    assert "50.0%" in capsys.readouterr().out  # six stays and six moves
    for cmd in ("frames", "run", "sweep", "attention", "counterfactual", "gradflow", "weights"):
        session_explorer.main([cmd, *common])
        out = capsys.readouterr().out
        assert out.strip(), cmd
    session_explorer.main(["sweep", *common])
    assert "<- recorded" in capsys.readouterr().out
    session_explorer.main(["attention", *common])
    out = capsys.readouterr().out
    assert all(k in out for k in ("APA", "ALF", "TTAR", "RI@16", "entropy")), out
    session_explorer.main(["train", *common, "--frames", "0-6", "--steps", "2"])
    assert "step 1" in capsys.readouterr().out
    for picture in ("frames.png", "sweep.png", "attention.png", "weights.png"):
        assert (tmp_path / "pictures" / picture).stat().st_size > 0


def test_jetbot_example_learns_against_the_sim_server_and_survives_losing_it(chapter_copy):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DISPLAY", None)
    server = subprocess.Popen(
        [sys.executable, "robots/sim_jetbot_server.py", "--port", "0"],
        cwd=chapter_copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = server.stdout.readline().strip().rsplit(":", 1)[1]
        example = subprocess.Popen(
            [
                sys.executable,
                "learner/examples/jetbot_world_model_example.py",
                "--port",
                port,
                "--steps",
                "1000",
                "--no-display",
            ],
            cwd=chapter_copy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        import time

        state = chapter_copy / "outputs" / "jetbot" / "metrics.jsonl"
        deadline = time.time() + 300
        while not state.exists() and time.time() < deadline and example.poll() is None:
            time.sleep(0.5)  # wait until the learner has logged its first steps
        server.terminate()  # the robot goes away mid-run
        out, err = example.communicate(timeout=120)
    finally:
        server.kill()
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert example.returncode == 2 and "Traceback" not in err, err[-2000:]
    assert "connection to the JetBot lost" in lines[-1] and "checkpoint saved" in lines[-1]
    assert "prediction error" in out  # the summary beside copy-last-frame is printed before exiting
    assert (chapter_copy / "checkpoints" / "jetbot" / "state.json").exists()


def test_threads_follow_the_free_cores(monkeypatch):
    from learner.utils import choose_threads

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

    assert train.parse_args(["--quick"]).steps == 60
    assert train.parse_args(["--quick", "--steps", "1500"]).steps == 1500  # typed, though the default
    assert validate.parse_args(["--quick"]).episodes == 4
    assert validate.parse_args(["--quick", "--episodes", "20"]).episodes == 20
    assert validate.parse_args(["--quick", "--episodes", "20"]).episode_len == 10  # not a flag: quick's


def test_bad_sizes_and_missing_files_are_one_line_errors(capsys):
    """validate.py's main in this process (a subprocess costs seconds of torch import; the subprocess
    tests above show that a UserError becomes one line and exit code 2)."""
    import validate
    from learner.utils import exit_on_user_error

    for args, words in (
        (["--episodes", "0"], ["--episodes", "got 0"]),
        (["--quick", "--episodes", "-2"], ["got -2"]),
        (["--checkpoint", "no-such-folder"], ["no such file: no-such-folder"]),
    ):
        with pytest.raises(SystemExit) as stop:
            exit_on_user_error(lambda a=args: validate.main(a))
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and len(err) == 1 and all(w in err[0] for w in words), err

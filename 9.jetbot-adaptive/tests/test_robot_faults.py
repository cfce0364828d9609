"""The robot path's ways out: an old rpyc on the robot, signals, Ctrl-C, garbage and wrong-size frames.

Every test here talks only to servers it starts on 127.0.0.1.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jetbot_test_helpers import (  # noqa: E402
    CHAPTER,
    FAKE_JETBOT,
    assert_one_line_error,
    copy_chapter,
    env,
    motor_log,
    rpyc_venv_python,
    run,
    start_recording_runner,
    start_server,
    stop_process,
    wait_for_actions,
)


# ---- rpyc versions: the robot's Python 3.6 gets rpyc 5.0.1 at most ---------------------------------
@pytest.mark.parametrize("version", ["5.0.1", "5.1.0"])
def test_client_talks_to_jetbot_server_on_the_oldest_rpyc_a_jetbot_installs(version, tmp_path):
    from robots import JetBotInterface

    python = rpyc_venv_python(version)
    if python is None:
        pytest.skip(f"cannot install rpyc=={version} in a throwaway venv (no uv or no package index)")
    log = tmp_path / "motors.jsonl"
    proc, port = start_server(
        "robots/jetbot_server.py", python=str(python), PYTHONPATH=str(FAKE_JETBOT), FAKE_JETBOT_LOG=str(log)
    )
    try:
        bot = JetBotInterface("127.0.0.1", port, ramp_step_s=0.0)
        assert bot.get_observation().shape == (224, 224, 3)
        bot.execute_action({"motor_left": 0.0, "motor_right": 0.12, "duration": 0.05})
        bot.cleanup()
        rights = [c["right"] for c in motor_log(log)]
        assert 0.12 in rights and rights[-1] == 0.0
    finally:
        stop_process(proc)


def test_rpyc_6_server_is_one_line_naming_the_version_mismatch():
    from robots import RemoteJetBot, RobotConnectionError

    python = rpyc_venv_python("6.0.2")
    if python is None:
        pytest.skip("cannot install rpyc==6.0.2 in a throwaway venv (no uv or no package index)")
    proc, port = start_server("robots/sim_jetbot_server.py", "--size", "32", python=str(python))
    try:
        with pytest.raises(RobotConnectionError, match="rpyc version mismatch") as info:
            RemoteJetBot("127.0.0.1", port, call_timeout_s=3)
        assert "\n" not in str(info.value)
    finally:
        stop_process(proc)


# ---- signals: the motors stop on every way out ----------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("script", ["robots/jetbot_server.py", "robots/sim_jetbot_server.py"])
def test_signal_stops_the_motors_within_half_a_second_and_exits(script, sig, tmp_path):
    from robots import RemoteJetBot

    log = tmp_path / "motors.jsonl"
    if script == "robots/jetbot_server.py":
        proc, port = start_server(script, PYTHONPATH=str(FAKE_JETBOT), FAKE_JETBOT_LOG=str(log))
    else:
        proc, port = start_server(script, "--size", "32", "--motor-log", str(log))
    try:
        client = RemoteJetBot("127.0.0.1", port)
        client.set_motors(0.5, 0.5)
        sent = time.time()
        proc.send_signal(sig)
        proc.wait(timeout=5)
        client.close()
        last = motor_log(log)[-1]
        assert (last["left"], last["right"]) == (0.0, 0.0) and last["t"] - sent < 0.5, last
        err = proc.stderr.read()
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert f"motors stopped: {sig.name} received" in proc.stdout.read()
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A copy of the chapter, so the recordings these tests make stay out of your saved/ folder."""
    return copy_chapter(tmp_path_factory.mktemp("chapter9-faults") / "9.jetbot-adaptive")


def test_ctrl_c_stops_the_motors_and_closes_the_session_with_the_true_reason(chapter_copy, tmp_path):
    import json

    log = tmp_path / "motors.jsonl"
    proc, example = start_recording_runner(chapter_copy, 32, "--motor-log", str(log))
    try:
        events = wait_for_actions(chapter_copy / "saved" / "sessions" / "jetbot", 3)
        example.send_signal(signal.SIGINT)
        out, err = example.communicate(timeout=5)
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()
        stop_process(proc)
    assert example.returncode == 0 and "Traceback" not in err, err
    assert "interrupted" in out
    meta = json.loads((events.parent / "metadata.json").read_text())
    actions = events.read_text().count('"type": "action"')
    assert meta["stop_reason"] == "interrupted" and meta["ended"] and meta["num_actions"] == actions
    last = motor_log(log)[-1]
    assert (last["left"], last["right"]) == (0.0, 0.0)


# ---- bad frames: one line, within 5 s, the same exit code everywhere ------------------------------
@pytest.fixture(scope="module")
def garbage_server():
    """A simulated JetBot whose every frame is bytes that are not a JPEG."""
    proc, port = start_server("robots/sim_jetbot_server.py", "--size", "32", "--corrupt-every", "1")
    yield port
    stop_process(proc)


@pytest.mark.parametrize(
    "script",
    [
        "robots/jetbot_remote_client.py",
        "robots/examples/jetbot_runner_example.py",
        "learner/examples/jetbot_world_model_example.py",
    ],
)
def test_garbage_frames_end_each_script_with_one_line_within_5_s(script, garbage_server, chapter_copy):
    args = [script, "--port", str(garbage_server), "--no-display"]
    if script == "learner/examples/jetbot_world_model_example.py":
        args += ["--steps", "5", "--checkpoint-dir", str(chapter_copy / "checkpoints" / "garbage")]
    start = time.perf_counter()
    out = run(chapter_copy, *args, timeout=60)
    seconds = time.perf_counter() - start
    assert_one_line_error(out, 2, "not a JPEG")
    assert seconds < 5, seconds  # the learner checks the camera before it builds (and imports) its model


def test_remote_client_prints_progress_without_seconds_and_ends_on_ctrl_c():
    """No --seconds: a line every second (not silence until the end), and Ctrl-C ends it cleanly."""
    import select

    server, port = start_server("robots/sim_jetbot_server.py", "--size", "32")
    proc = subprocess.Popen(
        [sys.executable, "robots/jetbot_remote_client.py", "--port", str(port), "--no-display"],
        cwd=CHAPTER,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        first = proc.stdout.readline() if ready else ""
        assert "frames/s" in first and "32x32" in first, first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0 and err == "", err
        assert "0 undecodable" in out.splitlines()[-1]
    finally:
        stop_process(proc)
        stop_process(server)


def test_wrong_size_frames_are_resized_once_with_a_warning_and_recorded_at_the_model_size(tmp_path):
    from robots import JetBotInterface
    from robots.recording import RecordingReader, RecordingRobot

    proc, port = start_server("robots/sim_jetbot_server.py", "--size", "96")
    try:
        warnings: list[str] = []
        bot = JetBotInterface("127.0.0.1", port, frame_size=64, warn=warnings.append)
        robot = RecordingRobot(bot, root=tmp_path)
        for _ in range(3):
            frame = robot.get_observation()
            assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
        robot.cleanup()
        assert len(warnings) == 1 and "96x96" in warnings[0] and "224x224" in warnings[0], warnings
        reader = RecordingReader(robot.session_dir)
        assert reader.observation(0).shape == (64, 64, 3)  # recorded at the model's size, not 96 or 224
    finally:
        stop_process(proc)

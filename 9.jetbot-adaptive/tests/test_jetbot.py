"""The JetBot path end to end: sim server in a subprocess, the RPyC protocol, the watchdog, the faults,
and jetbot_server.py itself with a fake ``jetbot`` hardware module."""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jetbot_test_helpers import (  # noqa: E402
    CHAPTER,
    FAKE_JETBOT,
    FakeHardware,
    assert_one_line_error,
    copy_chapter,
    run,
    serve_in_thread,
    start_recording_runner,
    start_server,
    stop_process,
    wait_for_actions,
)


@pytest.fixture(scope="module")
def sim_server():
    """``sim_jetbot_server.py`` on a free loopback port, killed after the module's tests."""
    proc, port = start_server("robots/sim_jetbot_server.py", "--seed", "3")
    yield port
    stop_process(proc)


def test_protocol_end_to_end_frames_change_and_motors_return_to_zero(sim_server):
    from robots import JetBotInterface

    bot = JetBotInterface("127.0.0.1", sim_server)
    try:
        before = bot.get_observation()
        assert before.shape == (224, 224, 3) and before.dtype == np.uint8
        assert np.array_equal(before, bot.get_observation())  # at rest the view does not change
        move, stay = bot.action_space[1], bot.action_space[0]
        assert move == {"motor_left": 0.0, "motor_right": 0.12, "duration": 0.2}
        frames = [before]
        for action in (move, stay, move):
            start = time.perf_counter()
            assert bot.execute_action(action) is True
            assert 0.19 < time.perf_counter() - start < 1.0
            after = bot.get_observation()
            time.sleep(0.1)  # motors at 0 after the action: the robot stands still, the view stays
            assert np.array_equal(after, bot.get_observation())
            frames.append(after)
        diffs = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:], strict=False)]
        assert diffs[0] > 2 and diffs[2] > 2  # a move changes the view
        assert diffs[1] == 0  # a stay does not
    finally:
        bot.cleanup()


def test_ramp_and_stop_as_the_server_sees_them():
    from robots import JetBotInterface
    from robots.jetbot_server import JetBotService

    hw = FakeHardware()
    service = JetBotService(hw, log=lambda msg: None)
    server, port = serve_in_thread(service)
    try:
        bot = JetBotInterface("127.0.0.1", port)
        hw.commands.clear()
        bot.execute_action({"motor_left": 0.0, "motor_right": 0.12, "duration": 0.2})
        rights = [r for _, r in hw.commands]
        assert rights[:4] == pytest.approx([0.03, 0.06, 0.09, 0.12])  # 4 ramp-up steps
        assert rights[-4:] == pytest.approx([0.09, 0.06, 0.03, 0.0])  # ramp down, then stop
        assert hw.commands[-1] == (0.0, 0.0)
        with pytest.raises(ValueError, match="malformed JetBot action"):
            bot.execute_action({"motor_left": 0.0, "motor_right": "fast", "duration": 0.2})
        with pytest.raises(ValueError, match="out of range"):
            bot.execute_action({"motor_left": 0.0, "motor_right": 1.5, "duration": 0.2})
        assert hw.commands[-1] == (0.0, 0.0) and len(rights) == len(hw.commands)  # nothing was sent
        bot.cleanup()
    finally:
        server.close()
        service.shutdown()


def test_watchdog_stops_the_motors_after_one_second_of_silence():
    from robots import RemoteJetBot
    from robots.jetbot_server import WATCHDOG_S, JetBotService

    assert WATCHDOG_S == 1.0
    hw, log = FakeHardware(), []
    service = JetBotService(hw, log=log.append)
    server, port = serve_in_thread(service)
    try:
        client = RemoteJetBot("127.0.0.1", port)
        client.set_motors(0.5, 0.5)
        time.sleep(0.6)
        assert hw.commands[-1] == (0.5, 0.5)  # still driving before the second is up
        time.sleep(0.8)
        assert hw.commands[-1] == (0.0, 0.0) and any("watchdog" in m for m in log)
        client.close()
    finally:
        server.close()
        service.shutdown()


def test_connection_and_call_time_outs_raise_one_exception_type():
    import socket

    from robots import RemoteJetBot, RobotConnectionError
    from robots.jetbot_server import JetBotService

    with socket.socket() as full:  # a loopback listener that never accepts, its queue filled: no answer
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        queued = []
        for _ in range(10):  # connect until the kernel's queue for it is full and a connect times out
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect(full.getsockname())
                queued.append(c)
            except OSError:
                c.close()
                break
        start = time.perf_counter()
        with pytest.raises(RobotConnectionError, match="cannot connect"):
            RemoteJetBot(*full.getsockname(), connect_timeout_s=0.5, call_timeout_s=0.5)
        assert time.perf_counter() - start < 5
        for q in queued:
            q.close()
    service = JetBotService(FakeHardware(), log=lambda msg: None)
    service.exposed_get_camera_frame = lambda: time.sleep(1.5) or ""  # a server that hangs
    server, port = serve_in_thread(service)
    try:
        client = RemoteJetBot("127.0.0.1", port, call_timeout_s=0.3)
        start = time.perf_counter()
        with pytest.raises(RobotConnectionError, match="lost the JetBot server"):
            client.get_frame()
        assert time.perf_counter() - start < 1.2  # gave up at the call time-out, not when the server woke
        with pytest.raises(RobotConnectionError, match="closed"):
            client.set_motors(0.1, 0.1)  # the connection is closed after a failure: no half-dead state
    finally:
        server.close()
        service.shutdown()


def test_undecodable_frames_are_skipped_then_the_run_stops_cleanly():
    from robots import JetBotInterface, decode_frame
    from robots.jetbot_server import JetBotService
    from robots.runner import RobotRunner, create_constant_action_selector

    assert decode_frame("not base64 !!") is None and decode_frame("aGVsbG8=") is None
    hw = FakeHardware()
    hw.read_frame = lambda: np.zeros((0, 0, 3), np.uint8)  # the camera hands over an empty image
    service = JetBotService(hw, log=lambda msg: None)
    service.exposed_get_camera_frame = lambda: "aGVsbG8="  # valid base64, not a JPEG
    server, port = serve_in_thread(service)
    try:
        bot = JetBotInterface("127.0.0.1", port)
        stay = bot.action_space[0]
        stats = RobotRunner(bot, create_constant_action_selector(stay), max_missing_frames=3).run(5)
        assert stats["steps"] == 0 and stats["stop_reason"] == "no frames"
        assert "4 frames in a row" in stats["error"] and "not a JPEG" in stats["error"]  # what was sent
        assert bot.jetbot.decode_failures == 4
        bot.cleanup()
    finally:
        server.close()
        service.shutdown()


def test_sim_server_corrupt_frames_do_not_stop_a_run(tmp_path):
    proc, port = start_server("robots/sim_jetbot_server.py", "--corrupt-every", "3", "--size", "64")
    try:
        from robots import JetBotInterface
        from robots.runner import RobotRunner, create_constant_action_selector

        bot = JetBotInterface("127.0.0.1", port, duration=0.05)
        stats = RobotRunner(bot, create_constant_action_selector(bot.action_space[0])).run(6)
        assert stats["steps"] == 6 and stats["stop_reason"] == "completed"
        assert bot.jetbot.decode_failures >= 2
        bot.cleanup()
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A copy of the chapter, so recordings made by the examples stay out of your saved/ folder."""
    return copy_chapter(tmp_path_factory.mktemp("chapter9") / "9.jetbot-adaptive")


def test_server_unreachable_at_start_is_one_line(chapter_copy):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run(
        chapter_copy,
        "robots/examples/jetbot_runner_example.py",
        "--port",
        str(port),
        "--no-display",
        "--steps",
        "2",
    )
    assert_one_line_error(out, 2, "cannot connect", str(port))
    out = run(chapter_copy, "robots/jetbot_remote_client.py", "--port", str(port), "--no-display")
    assert_one_line_error(out, 2, "cannot connect")


def test_server_killed_mid_run_saves_the_session_and_exits_cleanly(chapter_copy):

    from robots.recording import RecordingReader

    proc, example = start_recording_runner(chapter_copy, 64)
    try:  # wait for a few recorded actions, then pull the plug
        events = wait_for_actions(chapter_copy / "saved" / "sessions" / "jetbot", 3)
        stop_process(proc)
        out, err = example.communicate(timeout=120)
    finally:
        stop_process(proc)
        if example.poll() is None:
            example.kill()
            example.wait()
    assert example.returncode == 2, err  # the same exit code for a lost robot in every script
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "connection lost" in lines[0] and "Traceback" not in err, err
    assert "session saved" in out
    reader = RecordingReader(events.parent)  # the session is complete and readable
    assert len(reader) >= 3 and reader.metadata["stop_reason"] == "connection lost"
    assert reader.metadata["ended"] and reader.metadata["num_actions"] == len(reader)
    assert reader.observation(0).shape == (64, 64, 3)


def test_remote_client_counts_frames_headless(sim_server):
    out = run(
        CHAPTER,
        "robots/jetbot_remote_client.py",
        "--port",
        str(sim_server),
        "--no-display",
        "--seconds",
        "1.5",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "frames/s" in out.stdout and ", 0 undecodable" in out.stdout


def test_measure_robot_path_smoke(chapter_copy):
    out = run(chapter_copy, "robots/examples/measure_robot_path.py", "--seconds", "0.5", "--steps", "50")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((chapter_copy / "outputs" / "robot_path.json").read_text())
    assert report["measures"]["camera_fps_decoded"] > 0 and report["measures"]["dot_bytes_per_step"] > 0


def test_malformed_action_is_refused_before_anything_moves(sim_server):
    from robots import JetBotInterface
    from robots.runner import RobotRunner, create_constant_action_selector

    bot = JetBotInterface("127.0.0.1", sim_server)
    before = bot.get_observation()
    bad = create_constant_action_selector({"motor_left": 0.0, "motor_right": 0.12})  # no duration
    with pytest.raises(ValueError, match="duration"):
        RobotRunner(bot, bad).run(3)
    time.sleep(0.1)
    assert np.array_equal(before, bot.get_observation())  # the robot did not move
    bot.cleanup()


# ---- jetbot_server.py: the file that runs on the robot --------------------------------------------
def test_jetbot_server_is_python_3_6():
    source = (CHAPTER / "robots/jetbot_server.py").read_text()
    tree = ast.parse(source, feature_version=(3, 6))  # rejects the walrus, positional-only params, ...
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"__future__", "dataclasses", "typing"}, imported  # 3.7+ or not needed
    for node in ast.walk(tree):  # annotations would be evaluated at import: no ``X | None`` (3.10)
        assert not isinstance(node, ast.AnnAssign) and getattr(node, "returns", None) is None
        if isinstance(node, ast.arg):
            assert node.annotation is None, node.arg


def test_jetbot_server_with_fake_hardware(tmp_path):
    from robots import RemoteJetBot

    log = tmp_path / "motors.jsonl"
    proc, port = start_server(
        "robots/jetbot_server.py", PYTHONPATH=str(FAKE_JETBOT), FAKE_JETBOT_LOG=str(log)
    )
    try:
        client = RemoteJetBot("127.0.0.1", port)
        frame = client.get_frame()
        sys.path.insert(0, str(FAKE_JETBOT))
        import jetbot as fake

        expected = fake.Camera(224, 224).value[..., ::-1]  # BGR -> RGB
        assert frame.shape == (224, 224, 3) and np.abs(frame.astype(int) - expected).mean() < 4  # JPEG
        client.set_motors(3.0, -7.0)
        client.set_motors(float("nan"), 0.5)
        commands = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(c["left"], c["right"]) for c in commands[-2:]] == [(1.0, -1.0), (0.0, 0.5)]  # clamped
        for name in ("_hardware", "hardware", "shutdown", "getmodule", "eval", "exposed_shutdown"):
            with pytest.raises(AttributeError):
                getattr(client._conn.root, name)
        time.sleep(1.4)  # the watchdog stops the motors after 1 s without a command
        last = json.loads(log.read_text().splitlines()[-1])
        assert (last["left"], last["right"]) == (0.0, 0.0) and last["t"] - commands[-1]["t"] >= 0.95
        client.close()
    finally:
        stop_process(proc)
        sys.path.remove(str(FAKE_JETBOT)) if str(FAKE_JETBOT) in sys.path else None
        sys.modules.pop("jetbot", None)


def test_jetbot_server_without_the_jetbot_package_is_one_line(tmp_path):
    out = run(CHAPTER, "robots/jetbot_server.py", "--port", "0")
    assert_one_line_error(out, 2, "jetbot")

"""Helpers shared by this chapter's part-1 tests: servers in subprocesses or threads, one-line errors."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CHAPTER = Path(__file__).resolve().parents[1]
FAKE_JETBOT = Path(__file__).resolve().parent / "fake_jetbot"


def env(**extra) -> dict:
    """The environment for a subprocess: one torch/BLAS thread (CI machines are small), plus ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def start_server(
    script: str,
    *args: str,
    cwd: Path = CHAPTER,
    timeout: float = 60,
    python: str = sys.executable,
    **extra_env,
):
    """Start ``script --port 0 ...`` (with ``python``) and wait for its "listening on HOST:PORT" line;
    return (proc, port)."""
    proc = subprocess.Popen(
        [python, script, "--port", "0", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra_env),
    )
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if "listening on" not in line:
        stop_process(proc)
        raise RuntimeError(f"{script} did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, int(line.strip().rsplit(":", 1)[1])


def stop_process(proc: subprocess.Popen) -> None:
    """Kill a subprocess we started and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def start_recording_runner(folder: Path, size: int, *server_args: str):
    """A simulated JetBot server sending ``size``-px frames and, against it, the runner example run from
    ``folder`` recording up to 500 steps; returns (server, example)."""
    proc, port = start_server("robots/sim_jetbot_server.py", "--size", str(size), *server_args)
    args = ["robots/examples/jetbot_runner_example.py", "--port", str(port), "--no-display", "--record"]
    args += ["--steps", "500", "--camera-size", str(size)]
    example = subprocess.Popen(
        [sys.executable, *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, example


def wait_for_actions(folder: Path, n: int, timeout: float = 120) -> Path:
    """Wait until a recorded session under ``folder`` holds ``n`` actions; return its events.jsonl."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(folder.glob("*/events.jsonl"))
        if found and found[0].read_text().count('"type": "action"') >= n:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no session with {n} actions under {folder}")


def run(folder: Path, *args: str, timeout: int = 400, **extra_env) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**extra_env),
    )


def assert_one_line_error(out: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit ``code``, a single line on stderr containing ``words``, and no traceback."""
    assert out.returncode == code, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    for w in words:
        assert w in lines[0], lines[0]


def rpyc_venv_python(version: str) -> Path | None:
    """The Python of a throwaway venv with ``rpyc==version`` (plus numpy, OpenCV and gymnasium for the
    simulated server: the ``robots`` package's worlds are gymnasium envs), made once with uv and cached
    in the temp folder; None when it cannot be made (no uv, no network)."""
    root = Path(tempfile.gettempdir()) / f"ch9-rpyc-{version}-gym-venv"  # not a cache without gymnasium
    python = root / "bin" / "python"
    if (root / "ready").exists():
        return python
    uv = shutil.which("uv")
    if uv is None:
        return None
    shutil.rmtree(root, ignore_errors=True)
    steps = [
        [uv, "venv", "-q", "--python", sys.executable, str(root)],
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            f"rpyc=={version}",
            "numpy",
            "opencv-python-headless",
            "gymnasium",
        ],
    ]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir())
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
    (root / "ready").touch()
    return python


def motor_log(path: Path) -> list[dict]:
    """The JSON lines {"t", "left", "right"} a server's motor log holds (empty if there is none yet)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def copy_chapter(dst: Path) -> Path:
    """A copy of the chapter's code (no generated folders, no tests): scripts then write inside it."""
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "saved", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


class FakeHardware:
    """In-process hardware for JetBotService: a frame that changes with every motor command, and a log."""

    def __init__(self, size: int = 64):
        """Start at rest with a black frame."""
        self.size = size
        self.commands: list[tuple[float, float]] = []
        self.bad_frames = False  # True: read_frame returns something that is not an image

    def read_frame(self):
        """(H, W, 3) uint8 BGR whose brightness counts the commands so far."""
        level = (10 * len(self.commands)) % 256
        return np.full((self.size, self.size, 3), level, np.uint8)

    def set_motors(self, left: float, right: float) -> None:
        """Log the command."""
        self.commands.append((left, right))

    def close(self) -> None:
        """Nothing to release."""


def serve_in_thread(service):
    """Serve ``service`` on a free loopback port from a daemon thread; return (server, port)."""
    from robots.jetbot_server import make_server

    server = make_server(service, "127.0.0.1", 0)
    server._listen()  # listening before the first client connects (start() would do it in the thread)
    threading.Thread(target=server.start, daemon=True).start()
    return server, server.port

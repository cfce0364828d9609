"""Helpers the script tests share: run a chapter script, copy the chapter, check a one-line error."""

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHAPTER = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder``."""
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


def run_watched(folder: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """Like ``run``, and also measure the longest time the script printed nothing (``.longest_silence``,
    seconds, on stdout and stderr together, as a terminal shows them).

    A learner who sees nothing for a minute thinks the script hangs, so every loop longer than a few
    seconds shows a progress bar. PYTHONUNBUFFERED=1 makes the pipes behave like a terminal (Python
    would otherwise hold printed lines back), and a tqdm bar redraws with \\r, so bytes are read, not lines.
    """
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"} | {"PYTHONUNBUFFERED": "1"}
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


def copy_chapter(dst: Path) -> Path:
    """A fresh copy of the chapter's code at ``dst`` (no data, checkpoints, outputs or tests)."""
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    return dst


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

    import pytest
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

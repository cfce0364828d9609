"""No silent minutes: the quick runs of chapters 2 and 3 never go more than 10 s without printing.

A learner who sees nothing for a minute thinks the script hangs. Every loop longer than a few seconds
shows a progress bar, so the output stream (stdout and stderr together, as a terminal shows them) should
never pause for long. Each script runs in a temporary copy of its chapter, so a learner's own data,
checkpoints and pictures are never touched. PYTHONUNBUFFERED=1 makes the pipe behave like a terminal
(Python would otherwise hold printed lines back in a buffer).
"""

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_SILENCE_S = 10.0


def longest_silence(folder: Path, *args: str, timeout: float = 300) -> tuple[float, int, str]:
    """Run ``python args`` in ``folder``.

    Returns:
        the longest time in seconds without any output (counted from the start), the exit code (None if
        it ran past ``timeout`` and was killed) and the last 2,000 characters of its output.
    """
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"} | {"PYTHONUNBUFFERED": "1"}
    start = last = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    longest, out, fd = 0.0, b"", proc.stdout.fileno()
    while time.monotonic() - start < timeout:
        ready, _, _ = select.select([fd], [], [], 1.0)  # wake up every second even if nothing comes
        now = time.monotonic()
        longest = max(longest, now - last)
        if not ready:
            continue
        chunk = os.read(fd, 4096)  # a tqdm bar redraws with \r, not newlines: read bytes, not lines
        if not chunk:  # end of output: the script has finished
            return longest, proc.wait(timeout=30), out.decode(errors="replace")[-2000:]
        last, out = now, out + chunk
    proc.kill()
    return longest, None, out.decode(errors="replace")[-2000:]


@pytest.mark.parametrize("chapter", ["2.latent-dynamics", "3.action-conditioning"])
def test_quick_runs_are_never_silent_for_long(chapter, tmp_path):
    copy = tmp_path / chapter
    shutil.copytree(
        ROOT / chapter, copy, ignore=shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__")
    )
    for script in ("train.py", "validate.py"):
        gap, code, tail = longest_silence(copy, script, "--quick")
        assert code == 0, tail
        assert gap <= MAX_SILENCE_S, f"{chapter}/{script} --quick was silent for {gap:.1f} s:\n{tail}"


def test_the_gap_meter_sees_a_silent_pause(tmp_path):
    """The meter itself: a script that prints, sleeps 3 s and prints again has a 3 s gap."""
    (tmp_path / "pause.py").write_text("import time\nprint('a')\ntime.sleep(3)\nprint('b')\n")
    gap, code, tail = longest_silence(tmp_path, "pause.py")
    assert code == 0 and tail.split() == ["a", "b"]
    assert 2.9 <= gap < 6, gap

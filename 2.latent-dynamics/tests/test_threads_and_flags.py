"""The thread helper, --quick beside explicit flags, and the one-line errors of the validate flags.

Run in the chapter folder itself: every command here stops at its flags or at a missing file, so it
writes nothing.
"""

import subprocess
import sys
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside the chapter folder."""
    return subprocess.run([sys.executable, *args], cwd=CHAPTER, capture_output=True, text=True, timeout=120)


def test_threads_follow_the_free_cores(monkeypatch):
    from utils import choose_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads(0, cores=2, load=0.2) == (2, "2 cores, load 0.2")  # a free laptop: both cores
    assert choose_threads(0, cores=2, load=1.3)[0] == 1  # one core busy elsewhere: one thread
    assert choose_threads(0, cores=2, load=6.0)[0] == 1  # never fewer than one
    assert choose_threads(0, cores=8, load=2.6)[0] == 5
    assert choose_threads(3, cores=2, load=6.0) == (3, "set by --threads")  # the flag wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(0, cores=8, load=0.0) == (1, "set by OMP_NUM_THREADS")


def test_the_next_command_works_from_where_you_are(monkeypatch):
    from utils import command

    monkeypatch.chdir(CHAPTER)
    assert command("validate.py", "--quick") == "uv run validate.py --quick"
    monkeypatch.chdir(CHAPTER.parent)
    assert command("validate.py") == f"uv run {CHAPTER.name}/validate.py"


def test_quick_keeps_the_flags_you_typed():
    import train
    import validate

    assert validate.parse_args(["--quick"]).n_videos == 8
    assert validate.parse_args(["--quick", "--n-videos", "7"]).n_videos == 7
    assert train.parse_args(["--quick"]).dyn_steps == 10
    assert train.parse_args(["--quick", "--dyn-steps", "5"]).dyn_steps == 5


def test_threads_line_comes_first_and_a_missing_explicit_checkpoint_names_the_file():
    out = run("validate.py", "--quick", "--threads", "1", "--checkpoint", "no-such.pt")
    assert out.stdout.splitlines()[0].startswith("torch threads: 1 (set by --threads"), out.stdout
    assert out.returncode == 2 and out.stderr.strip() == "error: no such file: no-such.pt", out.stderr


def test_a_size_of_zero_is_a_one_line_error():
    """In-process (no subprocess importing torch): the flag check raises a one-line UserError, which
    exit_on_user_error turns into exit code 2 as the subprocess test above shows for a missing file."""
    import validate

    from utils import UserError

    with pytest.raises(UserError) as e:
        validate.parse_args(["--n-videos", "0", "--checkpoint", "no-such.pt"])
    assert "--n-videos" in str(e.value) and "\n" not in str(e.value), str(e.value)

"""Helpers the script tests share: run a chapter script, copy the chapter, check a one-line error."""

import shutil
import subprocess
import sys
from pathlib import Path

CHAPTER = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run a chapter script with this Python inside ``folder``."""
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


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

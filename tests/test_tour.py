"""tour.py: quick unless --full, says how long it will take, and names the chapters when --only misses."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD_ARGS = (
    "import json, pathlib, sys\n"
    "here = pathlib.Path(__file__).parent\n"
    "(here / (pathlib.Path(__file__).stem + '_args.json')).write_text(json.dumps(sys.argv[1:]))\n"
)


def fake_tree(root: Path) -> None:
    """Two chapters whose scripts only record the flags they were given."""
    for name in ("1.first", "3.third"):
        (root / name).mkdir(parents=True)
        (root / name / "train.py").write_text(RECORD_ARGS)
        (root / name / "validate.py").write_text(RECORD_ARGS)


def tour(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run tour.py on a fake tree."""
    cmd = [sys.executable, str(ROOT / "tour.py"), "--root", str(root), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_no_flag_runs_the_quick_tour_and_says_how_long(tmp_path):
    fake_tree(tmp_path)
    out = tour(tmp_path, "--only", "3")
    assert out.stdout.splitlines()[0].startswith("quick tour of 1 chapter(s)"), out.stdout
    assert "minutes" in out.stdout.splitlines()[0]
    assert (tmp_path / "3.third" / "train_args.json").read_text() == '["--quick"]'
    assert not (tmp_path / "1.first" / "train_args.json").exists()
    assert "Mode: quick" in (tmp_path / "tour_report.md").read_text()


def test_full_runs_the_default_scripts(tmp_path):
    fake_tree(tmp_path)
    out = tour(tmp_path, "--full")
    assert out.stdout.splitlines()[0].startswith("full tour of 2 chapter(s)"), out.stdout
    assert (tmp_path / "1.first" / "validate_args.json").read_text() == "[]"
    assert "Mode: full" in (tmp_path / "tour_report.md").read_text()


def test_an_unknown_chapter_lists_the_valid_ones(tmp_path):
    fake_tree(tmp_path)
    out = tour(tmp_path, "--only", "10")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no chapter 10" in out.stderr and "1 (1.first), 3 (3.third)" in out.stderr
    assert not (tmp_path / "1.first" / "train_args.json").exists()  # nothing ran

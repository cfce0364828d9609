"""tour.py: quick unless --full, says how long it will take, and names the chapters when --only misses."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD_ARGS = (  # a chapter script that records its flags, and writes a checkpoint under --out as chapters do
    "import json, pathlib, sys\n"
    "here = pathlib.Path(__file__).parent\n"
    "(here / (pathlib.Path(__file__).stem + '_args.json')).write_text(json.dumps(sys.argv[1:]))\n"
    "root = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]) if '--out' in sys.argv else here\n"
    "(root / 'checkpoints').mkdir(parents=True, exist_ok=True)\n"
    "(root / 'checkpoints' / 'model.pt').write_text('quick' if '--quick' in sys.argv else 'full')\n"
    "(root / 'outputs').mkdir(exist_ok=True)\n"
    "(root / 'outputs' / 'metrics.json').write_text(json.dumps({'passed': True, 'metrics': {'m': 1.0}}))\n"
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
    out_3 = str(tmp_path / "tour" / "3.third")
    assert (tmp_path / "3.third" / "train_args.json").read_text() == f'["--quick", "--out", "{out_3}"]'
    assert not (tmp_path / "1.first" / "train_args.json").exists()
    assert "Mode: quick" in (tmp_path / "tour" / "tour_report.md").read_text()


def test_full_runs_the_default_scripts(tmp_path):
    fake_tree(tmp_path)
    out = tour(tmp_path, "--full")
    assert out.stdout.splitlines()[0].startswith("full tour of 2 chapter(s)"), out.stdout
    out_1 = str(tmp_path / "tour" / "1.first")
    assert (tmp_path / "1.first" / "validate_args.json").read_text() == f'["--out", "{out_1}"]'
    assert "Mode: full" in (tmp_path / "tour" / "tour_report.md").read_text()


def test_the_tour_leaves_a_learners_checkpoint_alone(tmp_path):
    fake_tree(tmp_path)
    learner = subprocess.run([sys.executable, "train.py"], cwd=tmp_path / "3.third", timeout=60)  # a full run
    assert learner.returncode == 0
    mine = tmp_path / "3.third" / "checkpoints" / "model.pt"
    before = mine.read_bytes()
    out = tour(tmp_path, "--quick", "--only", "3", "--out", str(tmp_path / "elsewhere"))
    assert out.returncode == 0, out.stderr
    assert mine.read_bytes() == before  # byte-identical: the quick tour wrote its own under --out
    assert (tmp_path / "elsewhere" / "3.third" / "checkpoints" / "model.pt").read_text() == "quick"
    assert (tmp_path / "elsewhere" / "tour_report.md").exists()


def test_an_unknown_chapter_lists_the_valid_ones(tmp_path):
    fake_tree(tmp_path)
    out = tour(tmp_path, "--only", "10")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no chapter 10" in out.stderr and "1 (1.first), 3 (3.third)" in out.stderr
    assert not (tmp_path / "1.first" / "train_args.json").exists()  # nothing ran

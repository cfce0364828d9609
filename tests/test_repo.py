"""Repository-level tests: chapter isolation, the tour, CI's command, formatting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _two_chapter_tree(tmp: Path, with_conftest: bool) -> Path:
    """Two tiny chapters that both define `models` and `data_utils` and both have tests/test_models.py."""
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    if with_conftest:
        shutil.copy(ROOT / "conftest.py", tmp / "conftest.py")
    for chapter, name in (("1.alpha", "alpha"), ("2.beta", "beta")):
        _write(tmp / chapter / "models" / "__init__.py", f"NAME = {name!r}\n")
        _write(tmp / chapter / "data_utils.py", f"WORLD = {name!r}\n")
        _write(
            tmp / chapter / "tests" / "test_models.py",
            "import data_utils\nimport models\n\n\n"
            "def test_imported_at_collection():\n"
            f"    assert models.NAME == data_utils.WORLD == {name!r}\n\n\n"
            "def test_imported_while_running():\n"
            "    import models as again\n\n"
            f"    assert again is models and again.NAME == {name!r}\n",
        )
    return tmp


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_chapters_do_not_leak_modules(tmp_path):
    tree = _two_chapter_tree(tmp_path, with_conftest=True)
    out = _pytest(tree)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 passed" in out.stdout
    alone = _pytest(tree, "2.beta")  # one chapter on its own works too
    assert alone.returncode == 0 and "2 passed" in alone.stdout, alone.stdout + alone.stderr


def test_without_the_isolation_chapters_leak(tmp_path):
    """The control: the same tree without the root conftest fails, so the test above can fail."""
    out = _pytest(_two_chapter_tree(tmp_path, with_conftest=False))
    assert out.returncode != 0


def test_tour_reports_passes_and_crashes(tmp_path):
    ok = tmp_path / "1.ok"
    _write(ok / "train.py", "print('training')\n")
    _write(
        ok / "validate.py",
        "import json, pathlib, sys\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]) / 'outputs'\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'metrics.json').write_text(json.dumps({'metrics': {'acc': 0.9}, 'targets': "
        "{'acc': ['>=', 0.5]}, 'passed': True, 'train_seconds': 3}))\n"
        "(out / 'grid.png').write_bytes(b'')\n",
    )
    _write(tmp_path / "2.broken" / "train.py", "raise SystemExit(3)\n")
    _write(tmp_path / "2.broken" / "validate.py", "")
    tour = [sys.executable, str(ROOT / "tour.py"), "--root", str(tmp_path), "--quick"]
    both = subprocess.run(tour, capture_output=True, text=True, timeout=120)
    assert both.returncode == 1, both.stdout + both.stderr
    report = (tmp_path / "tour" / "tour_report.md").read_text()  # the tour's own output root
    assert "| 1.ok | ok | yes | acc 0.9 |" in report and "[grid](1.ok/outputs/grid.png)" in report
    assert "| 2.broken | train.py exited 3 |" in report
    only = subprocess.run(tour + ["--only", "1"], capture_output=True, text=True, timeout=120)
    assert only.returncode == 0 and "2.broken" not in (tmp_path / "tour" / "tour_report.md").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "uv run pytest" in readme
    commands = [line.strip() for line in ci.splitlines() if line.strip().startswith("uv run")]
    assert commands == ["uv run pytest"], commands


def test_code_is_ruff_clean():
    ruff = [sys.executable, "-m", "ruff"]
    fmt = subprocess.run(ruff + ["format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run(ruff + ["check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr

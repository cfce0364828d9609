"""Root pytest configuration: one `uv run pytest` collects the tests of every chapter.

The problem: every chapter has its own `models` package and `data_utils.py`, and Python keeps one
module per name in `sys.modules`. Once chapter 1's tests imported `models`, chapter 2's
`import models` would silently get chapter 1's.

The fix: before pytest collects or runs anything that belongs to a chapter, we *activate* that chapter:
its folder goes first on `sys.path`, and the modules that live in the previously active chapter are
moved out of `sys.modules` into a per-chapter store (and moved back when that chapter is active
again, so a module is imported once per chapter and `isinstance` checks keep working). Test modules are
imported with `--import-mode=importlib` (see pyproject.toml), so two chapters may both have
`tests/test_models.py`.

A chapter is the folder that holds a `tests/` folder; `tests/` at the repository root holds the
repository-level tests and belongs to no chapter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_stored: dict[Path, dict] = {}  # chapter folder -> {module name: module} while it is not active
_active: Path | None = None


def chapter_of(path: Path) -> Path | None:
    """The chapter folder a test path belongs to (the parent of its `tests/` folder), or None."""
    path = Path(path).resolve()
    for parent in [path, *path.parents]:
        if parent.name == "tests":
            return None if parent.parent == ROOT else parent.parent
        if parent == ROOT:
            return None
    return None


def _lives_in(module, chapter: Path) -> bool:
    """True for a module loaded from the chapter's own code (its tests are pytest's, left alone)."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    return path.is_relative_to(chapter) and not path.is_relative_to(chapter / "tests")


def activate(chapter: Path) -> None:
    """Make `import models` / `import data_utils` resolve to ``chapter``'s own files."""
    global _active
    if chapter == _active:
        return
    if _active is not None:  # put the previous chapter's modules away
        mine = {name: mod for name, mod in list(sys.modules.items()) if _lives_in(mod, _active)}
        for name in mine:
            del sys.modules[name]
        _stored[_active] = mine
        while str(_active) in sys.path:
            sys.path.remove(str(_active))
    sys.modules.update(_stored.pop(chapter, {}))
    sys.path.insert(0, str(chapter))
    _active = chapter


def pytest_collectstart(collector):
    """Activate a chapter before pytest imports any of its test modules."""
    chapter = chapter_of(collector.path) if getattr(collector, "path", None) else None
    if chapter is not None:
        activate(chapter)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Activate a chapter before each of its tests runs (tests may import lazily)."""
    chapter = chapter_of(item.path)
    if chapter is not None:
        activate(chapter)

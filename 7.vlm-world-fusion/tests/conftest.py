"""Chapter 7 test settings: the `slow` marker (the real-Gemma test), skipped unless RUN_SLOW=1.

Registered here, not in the repository's root conftest.py or pyproject.toml, so the chapter stays
self-contained. Run the slow test with:  RUN_SLOW=1 uv run pytest 7.vlm-world-fusion -m slow
"""

import os

import pytest


def pytest_configure(config):
    """Register the marker so `-m slow` works and pytest does not warn about it."""
    config.addinivalue_line("markers", "slow: loads a real language model (~1-2 min); needs RUN_SLOW=1")


def pytest_collection_modifyitems(config, items):
    """Skip tests marked slow unless the RUN_SLOW environment variable is 1."""
    if os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set RUN_SLOW=1 to run (loads real Gemma 3 270M)")
    for item in items:
        if "slow" in item.keywords and "7.vlm-world-fusion" in str(item.path):
            item.add_marker(skip)

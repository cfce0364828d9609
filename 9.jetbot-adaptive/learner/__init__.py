"""The adaptive world model (part 2): a robot that learns while it acts, one concern per file.

adaptive_world_model.py  the loop: perceive -> gate -> learn -> predict every action -> choose -> act
build.py                 the codec and the predictor a config asks for
acting.py                predict every action's outcome; choose the one the learner is least sure of
training.py              what trains when: the autoencoder alone, or predictor and encoder together
trust.py                 how much of the model's predicted change to report (per action)
replay_buffer.py         recent frames and actions, in segments, for replay
persistence.py           crash-proof checkpoint sets with a rolling backup
logs.py                  metrics JSONL, dashboard, live view and the one-line summary
evaluation.py            held-out scoring and the seed's attention metrics (validate.py's numbers)
compare.py               the equal-budget comparisons of train.py --compare
utils.py                 plumbing of the scripts: one-line errors, devices, threads, resizing, the dot locator
explorer/                looking inside recorded sessions and checkpoints (session_explorer.py)
examples/                the learner on the toroidal dot and on a JetBot
"""

import importlib

# Loaded on first use (PEP 562), so that ``learner.utils`` stays as light as a top-level module: the
# JetBot example imports it before it checks the camera, and builds the model only once frames arrive.
_EXPORTS = {
    "AdaptiveWorldModel": "adaptive_world_model",
    "MetricsLogger": "logs",
    "ReplayBuffer": "replay_buffer",
    "build_codec": "build",
    "build_predictor": "build",
    "load_latest": "persistence",
    "save_set": "persistence",
    "summary": "logs",
    "to_image": "logs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import the submodule that defines ``name`` when it is first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'learner' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)

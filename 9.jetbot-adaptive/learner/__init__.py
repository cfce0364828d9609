"""The adaptive world model (part 2): a robot that learns while it acts, one concern per file.

adaptive_world_model.py  the loop: perceive -> gate -> learn -> predict every action -> choose -> act
build.py                 the codec and the predictor a config asks for
acting.py                predict every action's outcome; choose the one the learner is least sure of
training.py              what trains when: the autoencoder alone, or predictor and encoder together
trust.py                 how much of the model's predicted change to report (per action)
replay_buffer.py         recent frames and actions, in segments, for replay
persistence.py           crash-proof checkpoint sets with a rolling backup
logs.py                  metrics JSONL, dashboard, live view and the one-line summary
"""

from .adaptive_world_model import AdaptiveWorldModel
from .build import build_codec, build_predictor
from .logs import MetricsLogger, summary, to_image
from .persistence import load_latest, save_set
from .replay_buffer import ReplayBuffer

__all__ = [
    "AdaptiveWorldModel",
    "MetricsLogger",
    "ReplayBuffer",
    "build_codec",
    "build_predictor",
    "load_latest",
    "save_set",
    "summary",
    "to_image",
]

"""Every setting of the chapter in one place: the robot path's limits, the per-robot presets and the
adaptive world model's knobs (one dataclass). Scripts take their defaults from here and change a value
only through a flag; nothing else defines a learning rate, a disk cap or a bad-frame limit.

Names follow the seed project (UPPER_CASE fields) so the README can talk about ``MASK_RATIO_MIN`` or
``FILM_BLOCK_IDS`` and a reader finds them here. ``AdaptiveWorldModelConfig.to_dict`` gives the plain
dict that checkpoints store (no pickled objects).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

HERE = Path(__file__).parent

# --- settings of the robot path (part 1), shared by the runner, the client, the recorder and the learner
MAX_BAD_FRAMES = 20  # consecutive unusable camera frames tolerated before a script stops with one line
LOST_CONNECTION_EXIT_CODE = 2  # every script exits with this after losing the robot (or its frames)
RECORDING_MAX_DISK_GB = 5.0  # all recorded sessions together (the examples' --max-disk-gb)

# Which numbers of an action dict the model sees, and the physical range of each (mapped to [-1, 1]).
ROBOT_PRESETS = {
    "toroidal_dot": {
        "ACTION_CHANNELS": ["action"],
        "ACTION_RANGES": [(0.0, 1.0)],
        "ACTION_DELAY": 0.0,
        "CNN_WRAP": True,  # the dot's world is a ring: a dot leaving on the right comes back on the left
        # train.py's default run; measured: an autoencoder at 5e-4 was still 3 px off after 600 steps (NOTES)
        "AUTOENCODER_LR": 2e-3,
        "PREDICTOR_LR": 1e-3,
    },
    "jetbot": {
        "ACTION_CHANNELS": ["motor_left", "motor_right"],
        "ACTION_RANGES": [(0.0, 0.12), (0.0, 0.12)],
        "ACTION_DELAY": 0.05,  # let the camera catch up after a 0.2 s motor pulse
        "PREDICTION_THRESHOLD": 0.0,  # a camera is never noise-free: train on every fresh prediction
        "RECONSTRUCTION_THRESHOLD": 0.1,  # textured frames: 0.1 is already a recognisable picture
        # 50 steps from nothing (jetbot_world_model_example.py): few frames, so learn more from each.
        # Measured on the simulated JetBot: with 2 updates per step a run whose codec hovered at the gate
        # predicted no better than copy-last after 50 steps; with 4 the same start was 15 % better.
        "AUTOENCODER_LR": 1e-3,
        "PREDICTOR_LR": 1e-3,
        "UPDATES_PER_STEP": 4,
        "LOG_INTERVAL": 10,
        "CHECKPOINT_INTERVAL": 25,
    },
}


@dataclass
class AdaptiveWorldModelConfig:
    """Settings of the learner: models, losses, gates, hierarchy, intervals, persistence and recording."""

    ROBOT_NAME: str = "toroidal_dot"
    ACTION_CHANNELS: list = field(default_factory=lambda: ["action"])
    ACTION_RANGES: list = field(default_factory=lambda: [(0.0, 1.0)])
    # --- perception: the codec ("cnn" is the default the README measured; "mae" is the ViT) ---
    CODEC: str = "cnn"
    MODEL_IMG_SIZE: int = 64  # observations are resized (area-averaged) to this side before the model
    LATENT_DIM: int = 16  # D, width of each token (the CNN gives 256 tokens per frame, the MAE 64)
    CNN_CHANNELS: int = 16
    CNN_STRIDE: int = 4  # pixels per token side: 4 -> 16x16 tokens of a 64-px frame (README, question 3)
    CNN_WRAP: bool = False  # pad the CNN circularly (worlds that wrap around, like the toroidal dot)
    MAE_PATCH: int = 8
    MAE_DEPTH: int = 4
    MAE_HEADS: int = 4
    MASK_RATIO_MIN: float = 0.3
    MASK_RATIO_MAX: float = 0.85
    FG_WEIGHT: float = 50.0  # a bright pixel (and its 1-px ring) counts this much more in pixel losses
    # --- prediction ---
    PREDICTION_HISTORY_SIZE: int = 3
    PREDICTOR_DIM: int = 64
    PREDICTOR_DEPTH: int = 4
    PREDICTOR_HEADS: int = 4
    TOKEN_MERGE: int = 4  # the predictor merges 4x4 CNN tokens into one (16 per frame); use 2 for the MAE
    # How the action reaches the frame tokens: "film" scales and shifts every token of step t by
    # gamma(a_t), beta(a_t) after the blocks FILM_BLOCK_IDS; "concat" appends the action embedding to
    # every frame token's input features instead (the ablation validate.py prints). Both keep the
    # action token in the sequence.
    ACTION_CONDITIONING: str = "film"
    FILM_BLOCK_IDS: list = field(default_factory=lambda: [0, 2])
    ACTION_EMBED_DIM: int = 64
    FILM_HIDDEN_DIM: int = 128
    PATCH_LOSS_WEIGHT: float = 0.2
    LATENT_LOSS_WEIGHT: float = 0.8
    ACTION_LOSS_WEIGHT: float = 1.0
    ACTION_GRAD_SCALE: float = 0.0  # share of the action loss gradient reaching the prediction (README)
    ENCODER_PRED_GRAD_SCALE: float = 0.1  # share of the predictor's gradient that reaches the encoder
    # --- learning ---
    AUTOENCODER_LR: float = 1e-4  # the seed project's; each robot's preset above sets the measured ones
    PREDICTOR_LR: float = 1e-4
    BATCH_SIZE: int = 16  # the fresh sample plus replayed ones
    REPLAY_SIZE: int = 4000  # frames kept in memory for replay
    GRAD_CLIP: float = 1.0
    UPDATES_PER_STEP: int = 2  # optimiser steps per loop step when training is due (fresh + replay)
    # Errors below are *relative* (relative_weighted_mse: 0 perfect, 1 = an all-black frame).
    RECONSTRUCTION_THRESHOLD: float = 0.1  # above it the robot waits and the autoencoder trains
    MAX_GATED_STEPS: int = 3  # safety valve: act anyway after this many waiting steps in a row
    PREDICTION_THRESHOLD: float = 0.02  # a fresh prediction worse than this triggers predictor training
    # Trust share: the learner reports last frame + share * (model's predicted change), the share fitted
    # per action on its last TRUST_WINDOW scored predictions (learner/trust.py); 0 = report the model.
    # It changes only what is reported; the predictor trains and acts exactly as without it (README).
    TRUST_WINDOW: int = 5
    # --- acting ---
    EXPLORATION_EPSILON: float = 0.2  # share of random actions beside the uncertainty-driven choice
    # Below this entropy (nats) for every action the choice is random: measured, argmax over near-zero
    # entropies picked "stay" 84 % of the time, and the predictor starved of "move" examples.
    ENTROPY_FLOOR: float = 0.1
    # Actions whose entropy is within this many nats of the highest are tied: one of them at random.
    # Measured on the simulated JetBot: the two entropies differed by ~1e-4 nats at 0.69 (the untrained
    # classifier), argmax chose "stay" on 31 of 34 steps and the predictor saw 3 "move"s in 50 steps.
    ENTROPY_TIE: float = 0.01
    ACTION_DELAY: float = 0.0  # seconds to wait after an action before the next observation
    # --- intervals, persistence, recording ---
    LOG_INTERVAL: int = 50
    DISPLAY_INTERVAL: int = 250
    CHECKPOINT_INTERVAL: int = 200  # in predictor training steps
    HISTORY_TO_SAVE: int = 100

    @classmethod
    def for_robot(cls, robot_name: str, **overrides) -> AdaptiveWorldModelConfig:
        """The defaults with a robot's action preset (see ROBOT_PRESETS) and any overrides applied."""
        if robot_name not in ROBOT_PRESETS:
            raise ValueError(f"unknown robot {robot_name!r}; known: {', '.join(ROBOT_PRESETS)}")
        return cls(ROBOT_NAME=robot_name, **{**ROBOT_PRESETS[robot_name], **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> AdaptiveWorldModelConfig:
        """Rebuild from ``to_dict`` output (unknown keys are ignored, so old checkpoints still load)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["ACTION_RANGES"] = [tuple(r) for r in d.get("ACTION_RANGES", [(0.0, 1.0)])]
        return cls(**d)

    def to_dict(self) -> dict:
        """A plain, JSON-friendly dict of every setting."""
        d = asdict(self)
        d["ACTION_RANGES"] = [list(r) for r in self.ACTION_RANGES]
        return d

    @property
    def checkpoint_dir(self) -> Path:
        """Default checkpoint folder of this robot: checkpoints/<robot>/."""
        return HERE / "checkpoints" / self.ROBOT_NAME

    @property
    def log_dir(self) -> Path:
        """Where the JSONL metrics, the dashboard and the view PNGs go: outputs/<robot>/."""
        return HERE / "outputs" / self.ROBOT_NAME

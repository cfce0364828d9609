"""The toroidal dot: the smallest world in which an action has a visible, learnable effect.

Seed semantics: a 224x224 black image with a white dot of radius 2; action 0 stays, action 1 moves the
dot 7 px to the right; x wraps around (the world is a ring), y never changes; the dot starts at a
random (x, y) on reset, reproducible from the seed.

``ToroidalDotEnvironment`` is a ``gymnasium.Env``, the interface every chapter's simulated world speaks:
``reset(seed=...)`` -> (frame, info), ``step(action)`` -> (frame, reward, terminated, truncated, info),
the dot's position in ``info``. The world has no task, so the reward is always 0 and an episode never
ends on its own. ``ToroidalDotRobot`` puts the same world behind the robot contract of ``interface.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium
import numpy as np

from .interface import RobotInterface


@dataclass
class ToroidalDotConfig:
    """Parameters of the toroidal dot world (defaults are the seed semantics)."""

    img_size: int = 224  # frames are (img_size, img_size, 3)
    dot_radius: float = 2.0  # px
    move_px: int = 7  # how far action 1 moves the dot to the right
    seed: int | None = None  # None: a different start every run


class ToroidalDotEnvironment(gymnasium.Env):
    """A white dot on black that action 1 moves right by ``move_px`` (x wraps); action 0 stays."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, config: ToroidalDotConfig | None = None):
        """Create the world and place the dot (``reset`` with the config's seed)."""
        self.config = config or ToroidalDotConfig()
        size = self.config.img_size
        self.observation_space = gymnasium.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gymnasium.spaces.Discrete(2)  # 0 stay, 1 move right
        self.render_mode = "rgb_array"
        self.reset(seed=self.config.seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Put the dot at a random integer (x, y); returns the first frame (H, W, 3) uint8 and info.

        ``seed`` re-seeds the world's generator (``self.np_random``, set up by gymnasium's reset);
        without it the next start comes from the same stream.
        """
        super().reset(seed=seed)
        size = self.config.img_size
        self.x = int(self.np_random.integers(0, size))
        self.y = int(self.np_random.integers(0, size))
        return self.render(), {"position": self.position}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply action 0 (stay) or 1 (move right, wrapping): (frame, 0.0, False, False, info)."""
        if action not in (0, 1):
            raise ValueError(f"toroidal dot action must be 0 (stay) or 1 (move right), got {action!r}")
        if action == 1:
            self.x = (self.x + self.config.move_px) % self.config.img_size
        return self.render(), 0.0, False, False, {"position": self.position}

    @property
    def position(self) -> tuple[int, int]:
        """The dot's centre (x, y) in pixels."""
        return self.x, self.y

    def render(self) -> np.ndarray:
        """Draw the dot: (H, W, 3) uint8, white disc on black; the disc wraps across the x border.

        Only the (2r+1) x (2r+1) box around the centre is tested (not the whole image): the same
        pixels as a full-image distance test, about 40x faster at 224 px.
        """
        size, r = self.config.img_size, int(np.ceil(self.config.dot_radius))
        offsets = np.arange(-r, r + 1)  # (K,) pixel offsets from the centre, K = 2r + 1
        inside = offsets[None, :] ** 2 + offsets[:, None] ** 2 <= self.config.dot_radius**2  # (K, K) [dy, dx]
        rows = self.y + offsets  # (K,) y never wraps: rows outside the image are dropped
        cols = (self.x + offsets) % size  # (K,) x wraps around the ring
        keep = (rows >= 0) & (rows < size)
        frame = np.zeros((size, size, 3), dtype=np.uint8)
        yy, xx = np.nonzero(inside[keep])
        frame[rows[keep][yy], cols[xx]] = 255
        return frame


class ToroidalDotRobot(RobotInterface):
    """The toroidal dot behind the RobotInterface: actions are ``{"action": 0}`` and ``{"action": 1}``."""

    robot_type = "toroidal_dot"

    def __init__(self, config: ToroidalDotConfig | None = None):
        """Wrap a fresh ``ToroidalDotEnvironment`` built from ``config``."""
        self.env = ToroidalDotEnvironment(config)
        self._frame = self.env.render()

    def get_observation(self) -> np.ndarray:
        """The current frame, (H, W, 3) uint8."""
        return self._frame

    def execute_action(self, action: dict) -> bool:
        """Execute ``{"action": 0 or 1}``; a malformed dict raises ValueError naming what is expected."""
        if not isinstance(action, dict) or action.get("action") not in (0, 1):
            raise ValueError(f"expected an action dict {{'action': 0}} or {{'action': 1}}, got {action!r}")
        self._frame = self.env.step(action["action"])[0]
        return True

    @property
    def action_space(self) -> list[dict]:
        """Stay and move right."""
        return [{"action": 0}, {"action": 1}]

    def cleanup(self) -> None:
        """Nothing to release in a simulation."""

"""A simulated JetBot: a two-wheeled robot in a small room with coloured walls, seen by a forward camera.

This is the robot behind ``sim_jetbot_server.py``: the same ``read_frame`` / ``set_motors`` / ``close``
as the real hardware, so the whole JetBot path (server, RPyC, client, runner, recorder) runs on one
laptop. It is not physics-accurate; it only has to make frames change with the motor commands the
way a real robot's would: turning pans the view, driving forward makes walls and floor tiles grow.
``SimRoomEnv`` (at the end) is the same room as a ``gymnasium.Env`` with a simulated clock.

    top view (3 m x 3 m)               camera view (ray casting, one ray per image column)
    +----- red (north) -----+          ceiling: dark grey
    |                       |          walls: colour of the wall hit, striped every 0.3 m, darker far away
  yellow      >  robot    green        floor: grey checkerboard of 0.25 m tiles
    |                       |
    +----- blue (south) ----+

Differential drive: wheel speeds v_l, v_r = motor * max_wheel_speed; forward speed (v_l + v_r) / 2,
turn rate (v_r - v_l) / wheel_base. The pose advances by the real time elapsed since the last update,
so the robot moves between requests exactly as long as its motors are on.
"""

from __future__ import annotations

import threading
import time

import cv2
import gymnasium
import numpy as np

# Wall colours in BGR (the camera's order, as the real JetBot's Camera delivers frames).
WALL_BGR = {"north": (40, 40, 220), "east": (40, 200, 40), "south": (220, 80, 40), "west": (40, 220, 230)}


class SimulatedJetBot:
    """A differential-drive robot in a square room, rendered by ray casting.

    Args:
        size: frame width and height in pixels.
        room_m: the room's side in metres.
        seed: start pose (position and heading) is drawn from it.
        noise_std: standard deviation of Gaussian pixel noise (0: frames are exact).
        fov_deg: horizontal field of view.
        clock: a function returning seconds (``time.monotonic``; tests may pass a fake).
    """

    def __init__(self, size=224, room_m=3.0, seed=0, noise_std=0.0, fov_deg=90.0, clock=time.monotonic):
        """Place the robot and precompute the per-column ray angles and per-row floor distances."""
        self.size, self.room = size, room_m
        self.max_wheel_speed, self.wheel_base, self.radius = 1.0, 0.12, 0.08  # m/s at motor 1.0, m, m
        self.cam_height, self.wall_height = 0.1, 0.5  # m
        self.noise_std = noise_std
        self.rng = np.random.default_rng(seed)
        self.x, self.y = self.rng.uniform(0.25 * room_m, 0.75 * room_m, size=2)
        self.heading = float(self.rng.uniform(-np.pi, np.pi))
        self.motors = (0.0, 0.0)
        self.clock = clock
        self._t = clock()
        self._lock = threading.Lock()
        self.focal = (size / 2) / np.tan(np.radians(fov_deg) / 2)  # px
        self.col_angle = np.arctan(
            (np.arange(size) + 0.5 - size / 2) / self.focal
        )  # (W,) relative to heading
        self.rows = np.arange(size)[:, None] + 0.5  # (H, 1) pixel-row centres
        self.low_rows = self.rows[size // 2 :].astype(np.float32)  # (H/2, 1) the rows that can see floor
        self.inv_cos = (1 / np.cos(self.col_angle)).astype(np.float32)[None, :]  # (1, W)

    # ---- the hardware contract ------------------------------------------------------------------
    def set_motors(self, left: float, right: float) -> None:
        """New wheel speeds from now on (the pose first catches up with the old ones)."""
        with self._lock:
            self._advance()
            self.motors = (float(left), float(right))

    def read_frame(self) -> np.ndarray:
        """The camera image now: (H, W, 3) uint8 BGR."""
        with self._lock:
            self._advance()
            x, y, heading = self.x, self.y, self.heading
        return self.render(x, y, heading)

    def close(self) -> None:
        """Stop the wheels."""
        self.set_motors(0.0, 0.0)

    # ---- physics --------------------------------------------------------------------------------
    def _advance(self) -> None:
        """Integrate the pose from the last update to now in steps of at most 10 ms; walls stop the robot."""
        now = self.clock()
        dt, self._t = now - self._t, now
        left, right = self.motors
        if left == 0 and right == 0 or dt <= 0:
            return
        v_l, v_r = left * self.max_wheel_speed, right * self.max_wheel_speed
        speed, turn = (v_l + v_r) / 2, (v_r - v_l) / self.wheel_base  # m/s, rad/s
        n = int(np.ceil(dt / 0.01))
        lo, hi = self.radius, self.room - self.radius
        for _ in range(n):
            self.heading = (self.heading + turn * dt / n + np.pi) % (2 * np.pi) - np.pi
            self.x = float(np.clip(self.x + speed * np.cos(self.heading) * dt / n, lo, hi))
            self.y = float(np.clip(self.y + speed * np.sin(self.heading) * dt / n, lo, hi))

    # ---- camera ---------------------------------------------------------------------------------
    def render(self, x: float, y: float, heading: float) -> np.ndarray:
        """Ray-cast the room from pose (x, y, heading): (H, W, 3) uint8 BGR."""
        size, room, f = self.size, self.room, self.focal
        angle = heading + self.col_angle  # (W,) absolute ray angles
        dx, dy = np.cos(angle), np.sin(angle)
        with np.errstate(divide="ignore"):
            tx = np.where(dx > 0, (room - x) / dx, np.where(dx < 0, -x / dx, np.inf))  # (W,) to east/west
            ty = np.where(dy > 0, (room - y) / dy, np.where(dy < 0, -y / dy, np.inf))  # (W,) to north/south
        hit_x = tx < ty  # (W,) True: the ray meets the east or west wall first
        t = np.minimum(tx, ty)
        along = np.where(hit_x, y + t * dy, x + t * dx)  # (W,) position along the wall, for the stripes
        depth = np.maximum(t * np.cos(self.col_angle), 1e-3)  # (W,) perpendicular distance: no fish-eye
        colours = np.array([WALL_BGR["east"], WALL_BGR["west"], WALL_BGR["north"], WALL_BGR["south"]], float)
        which = np.where(hit_x, np.where(dx > 0, 0, 1), np.where(dy > 0, 2, 3))  # (W,)
        stripe = np.where(np.floor(along / 0.3) % 2 == 0, 1.0, 0.6)  # (W,)
        wall = colours[which] * (stripe / (1 + 0.35 * depth))[:, None]  # (W, 3)
        horizon = size / 2
        top = horizon - f * (self.wall_height - self.cam_height) / depth  # (W,) wall's top row
        bottom = horizon + f * self.cam_height / depth  # (W,) wall's bottom row
        # Floor: a pixel at row r below the horizon sees the ground at perpendicular distance `ground`;
        # only the lower half of the image can see the floor, so only it is computed.
        low = self.low_rows  # (H/2, 1) float32
        ground = np.float32(f * self.cam_height) / np.maximum(
            low - np.float32(horizon), np.float32(0.5)
        )  # (H/2, 1)
        reach = ground * self.inv_cos  # (H/2, W) distance along each ray (float32 throughout: 2x faster)
        tiles_x = (np.float32(4 * x) + reach * np.float32(4) * dx.astype(np.float32)).astype(
            np.int32
        )  # 0.25 m tiles
        tiles_y = (np.float32(4 * y) + reach * np.float32(4) * dy.astype(np.float32)).astype(np.int32)
        checker = (tiles_x + tiles_y) & 1  # (H/2, W) 0 or 1 (beyond the walls it is hidden anyway)
        shade = np.float32(1) / (np.float32(1) + np.float32(0.35) * ground)  # (H/2, 1) darker far away
        gray = np.full((size, size), 45, np.uint8)  # (H, W) ceiling everywhere first
        floor = ((110 + 60 * checker) * shade).astype(np.uint8)  # (H/2, W)
        gray[size // 2 :] = np.where(low >= bottom[None, :], floor, np.uint8(45))
        is_wall = (self.rows >= top[None, :]) & (self.rows < bottom[None, :])  # (H, W)
        # Compose with OpenCV (np.where over (H, W, 3) took ~4 ms, this ~0.15 ms): grey to BGR, then
        # copy each column's wall colour where the wall is.
        img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)  # (H, W, 3) uint8
        walls = np.ascontiguousarray(np.broadcast_to(wall.astype(np.uint8)[None], img.shape))  # (H, W, 3)
        cv2.copyTo(walls, is_wall.view(np.uint8), img)
        if self.noise_std > 0:
            noise = self.rng.normal(0, self.noise_std, img.shape)
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
        return img


class SimRoomEnv(gymnasium.Env):
    """The simulated room as a ``gymnasium.Env``, the interface every chapter's simulated world speaks.

    An action is the two wheel speeds (left, right) in [-1, 1], held for ``step_s`` seconds of
    *simulated* time and then stopped (as the JetBot's actions ramp down to rest); the observation is
    the camera frame in RGB (H, W, 3) uint8; ``info`` holds the pose (x, y in metres, heading in
    radians). No task: the reward is always 0 and an episode never ends on its own. Unlike the server,
    the clock is the env's own, so an episode runs as fast as the renderer and is reproducible.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, size: int = 224, step_s: float = 0.2, noise_std: float = 0.0):
        """A room seen at ``size`` x ``size`` pixels; see the class docstring for the action."""
        self.size, self.step_s, self.noise_std = size, step_s, noise_std
        self.observation_space = gymnasium.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)  # (left, right) motor speeds
        self.render_mode = "rgb_array"
        self._now = 0.0  # simulated seconds
        self.bot: SimulatedJetBot | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """A new start pose drawn from the env's generator (``seed`` re-seeds it): (frame, info)."""
        super().reset(seed=seed)
        self._now = 0.0
        pose_seed = int(self.np_random.integers(2**31))  # the robot draws its pose (and noise) from it
        self.bot = SimulatedJetBot(
            self.size, seed=pose_seed, noise_std=self.noise_std, clock=lambda: self._now
        )
        return self.render(), self._info()

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Drive at (left, right) for ``step_s`` simulated seconds, then stop.

        Returns (frame, 0.0, False, False, info)."""
        if self.bot is None:
            raise RuntimeError("call reset() before step()")
        motors = np.asarray(action, dtype=np.float64)
        if motors.shape != (2,) or not np.isfinite(motors).all():
            raise ValueError(f"expected two finite motor speeds (left, right) in [-1, 1], got {action!r}")
        left, right = np.clip(motors, -1.0, 1.0)
        self.bot.set_motors(left, right)
        self._now += self.step_s  # the wheels turn for step_s seconds of simulated time ...
        self.bot.set_motors(0.0, 0.0)  # ... then the pose catches up and the robot stops
        return self.render(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The camera frame now: (H, W, 3) uint8 RGB (the robot's camera delivers BGR)."""
        return np.ascontiguousarray(self.bot.read_frame()[..., ::-1])

    def _info(self) -> dict:
        """The robot's pose: what a simulator knows and a real robot would have to estimate."""
        return {"x": self.bot.x, "y": self.bot.y, "heading": self.bot.heading}

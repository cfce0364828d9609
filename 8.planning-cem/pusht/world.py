"""The external benchmark's world: PushT (gym-pusht, DINO-WM's and Diffusion Policy's task) at 64x64 pixels.

A blue disk (the agent, pulled by a PD controller towards a target point) pushes a grey T-shaped block.
One *planner action* (dx, dy) in [-1, 1]^2 sets the target ``agent + REACH * (dx, dy)`` pixels (of the
512-px board, fixed at the agent's position when the action starts) and holds it for FRAMESKIP = 5 env
steps (0.5 s of simulated time). The learned model's pose head is trained to read the agent's and the
block's pose off a frame (pusht/data.py: ``pose_features``; the block's pose is supervision).

DINO-WM's PushT protocol: the goal is the state a recorded push reaches 25 env steps later (frameskip 5,
goal_H 5: PLAN_STEPS = 5 planner actions), shown to the planner as an image; the episode has the same
25 env steps; success is DINO-WM's ``eval_state``: the 4-vector distance between (agent x, y, block
x, y) and the goal's below 20 px, and the block's angle within pi/9 of the goal's. (DINO-WM's planner
action is 5 separate env actions concatenated; here one action is held for 5 env steps, a 2-d instead
of a 10-d search per planner step. The "recorded pushes" are a scripted pusher's: DINO-WM's come from
its 18.5k-trajectory dataset.)

The oracle plans with a copy of the true physics (``Physics``: the same pymunk world without pictures,
its bodies' positions and velocities set from the real environment before every candidate) and the true
pose cost; pymunk steps one world at a time, so candidates cannot be batched: each is simulated alone
(64 samples x 25 CEM iterations per plan: about 5 s per MPC step on one busy core).

This file is the world (env, physics copy, cost, tasks); pusht/data.py makes and caches the training
data, pusht/plan.py plans (oracle and learned model) and prints the table.

Shape key: N trajectories, T frames, S candidate sequences, H horizon, A = 2 action dims.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen
REACH = 100.0  # pixels per unit action
FRAMESKIP = 5  # env steps per planner action (DINO-WM's frameskip)
PLAN_STEPS = 5  # planner actions from the start to the goal (DINO-WM's goal_H): 25 env steps
WARMUP = 2  # scripted actions before a recorded push's start state (so the agent is near the block)
POS_TOL, ANGLE_TOL = 20.0, np.pi / 9  # DINO-WM's success thresholds (px on the 512-px board, radians)


def make_env(obs_type: str = "state"):
    """The raw gym-pusht environment (64x64 frames; a one-line error if the package is missing)."""
    try:
        from gym_pusht.envs.pusht import PushTEnv
    except ImportError as e:
        from utils import UserError

        raise UserError(f"PushT needs the gym-pusht package ({e.name} is missing)") from None
    return PushTEnv(obs_type=obs_type, render_mode="rgb_array", observation_width=64, observation_height=64)


def body_state(u) -> np.ndarray:
    """The full physical state of an env's bodies (10,): agent x, y, vx, vy; block x, y, angle, vx, vy, w."""
    a, b = u.agent, u.block
    return np.array([*a.position, *a.velocity, *b.position, b.angle, *b.velocity, b.angular_velocity])


def set_body_state(u, s: np.ndarray) -> None:
    """Put an env's bodies into the state ``body_state`` returned (positions *and* velocities).

    The angle is set before the position: pymunk turns a body about its centre of gravity, which on the
    T is not the body's origin, so the other order (gym-pusht's ``reset_to_state``) puts the block 58 px
    from where it was asked on average, 90 px at most (measured on 200 random states)."""
    u.agent.position, u.agent.velocity = (s[0], s[1]), (s[2], s[3])
    u.block.angle = s[6]
    u.block.position = (s[4], s[5])
    u.block.velocity, u.block.angular_velocity = (s[7], s[8]), s[9]


def advance(u, action) -> None:
    """One planner action on env ``u``: the target agent + REACH * action, held for FRAMESKIP env steps
    of gym-pusht's own control loop (PD control, then 10 pymunk steps of 0.01 s per env step). The same
    function moves the real environment and the oracle's copy, so the oracle's physics is the true one.

    The PD update is gym-pusht's ``step`` written on floats instead of pymunk vectors (the same
    arithmetic, the same numbers, 2.6x faster: the oracle calls it ~10^5 times per task)."""
    a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1, 1)
    agent, (x, y) = u.agent, u.agent.position
    tx, ty = min(max(x + REACH * a[0], 0.0), 512.0), min(max(y + REACH * a[1], 0.0), 512.0)  # target
    kp, kv, dt = u.k_p, u.k_v, u.dt
    for _ in range(FRAMESKIP * int(round(1 / (dt * u.control_hz)))):  # 5 env steps x 10 physics steps
        (x, y), (vx, vy) = agent.position, agent.velocity
        agent.velocity = (vx + (kp * (tx - x) - kv * vx) * dt, vy + (kp * (ty - y) - kv * vy) * dt)
        u.space.step(dt)
    u._last_action = (tx, ty)


class PushT:
    """PushT behind the point-mass interface: ``reset(state)``, ``step(action)``, ``render()``, ``pos``."""

    def __init__(self):
        self.env = make_env()
        self.u = self.env  # the PushTEnv itself (bodies, space)
        self.frame = None

    def reset(self, state=None, seed: int | None = None) -> np.ndarray:
        """Reset to a state [agent x, y, block x, y, angle] at rest (or a seeded random one); the frame."""
        self.env.reset(seed=seed)
        if state is not None:  # exactly there (see set_body_state), at rest, in a fresh pymunk world
            self.u._setup()  # (reset stepped the physics once at a random state: its contacts would linger)
            s = np.asarray(state, dtype=np.float64)
            set_body_state(self.u, np.array([s[0], s[1], 0, 0, s[2], s[3], s[4], 0, 0, 0]))
            for shape in self.u.space.shapes:  # the drawing reads the shapes' cached world positions,
                shape.cache_bb()  # which pymunk only updates when it steps: update them now
        self.frame = self.u._render()
        return self.frame

    def step(self, action) -> np.ndarray:
        """One planner action (2,) or (1, 2) in [-1, 1] (FRAMESKIP env steps); return the new frame."""
        advance(self.u, action)
        self.frame = self.u._render()  # (64, 64, 3) uint8
        return self.frame

    def render(self) -> np.ndarray:
        """The current frame (64, 64, 3) uint8."""
        return self.frame

    @property
    def agent(self) -> np.ndarray:
        """The agent's (x, y) in board pixels."""
        return np.array(self.u.agent.position)

    @property
    def pos(self) -> np.ndarray:
        """Proprioception: the agent's (x, y) / 512."""
        return self.agent / 512

    def state(self) -> np.ndarray:
        """[agent x, y, block x, y, block angle] (pixels, radians)."""
        return body_state(self.u)[[0, 1, 4, 5, 6]]


class Physics:
    """The oracle's simulator: a second gym-pusht world, no pictures, set to any body state and stepped
    with the real environment's own control loop (``advance``)."""

    def __init__(self):
        self.u = make_env()
        self.u.reset(seed=0)

    def rollout(self, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """start: body_state (10,); actions (H, A) -> the pose [agent x, y, block x, y, angle] after each
        action, (H, 5)."""
        set_body_state(self.u, start)
        out = np.empty((len(actions), 5))
        for t, a in enumerate(actions):
            advance(self.u, a)
            out[t] = body_state(self.u)[[0, 1, 4, 5, 6]]
        return out


def angle_diff(a, b):
    """|a - b| wrapped to [0, pi] (numpy or torch)."""
    d = (a - b + np.pi) % (2 * np.pi) - np.pi
    return abs(d)


def pose_cost(pose, goal):
    """The planning cost of poses (..., 5) against goals (5,) or broadcastable (..., 5) (numpy or torch):
    the (agent, block) position distance over 20 px plus the angle difference over pi/9, so that each
    term is 1 at its success threshold. Returns (...)."""
    pos = ((pose[..., :4] - goal[..., :4]) ** 2).sum(-1) ** 0.5
    return pos / POS_TOL + angle_diff(pose[..., 4], goal[..., 4]) / ANGLE_TOL


def pusht_success(goal: np.ndarray, state: np.ndarray) -> tuple[bool, float]:
    """DINO-WM's ``eval_state``: ||(agent, block) position difference|| < 20 px and the block's angle
    within pi/9 of the goal's. Returns (success, the 4-vector position distance in px)."""
    pos = float(np.linalg.norm(goal[:4] - state[:4]))
    return bool(pos < POS_TOL and angle_diff(goal[4], state[4]) < ANGLE_TOL), pos


def scripted_action(env: PushT, rng: np.random.Generator, aim: np.ndarray) -> np.ndarray:
    """A pushing move: head for a point ``aim`` off the block's centre (so the agent hits the block and
    pushes it), with noise. Returns (2,) in [-1, 1]."""
    block = env.state()[2:4]
    delta = (block + aim - env.agent) / REACH  # (2,) towards the aim point
    return np.clip(delta + rng.normal(0, 0.3, 2), -1, 1).astype(np.float32)


def make_pusht_tasks(n: int, seed: int) -> list[dict]:
    """``n`` tasks from recorded scripted pushes: WARMUP actions from a seeded random state, then the
    start (reset there at rest, as DINO-WM resets to a dataset state) and the goal PLAN_STEPS actions
    (25 env steps) later.

    Returns:
        one dict per task: "start" and "goal" states (5,), "goal_frame" (64, 64, 3) uint8 and the
        recorded "actions" (PLAN_STEPS, A) that lead from the start to the goal.
    """
    env, rng, tasks = PushT(), np.random.default_rng(seed), []
    for _ in range(n):
        env.reset(seed=int(rng.integers(1 << 30)))
        aim = rng.normal(0, 30, 2)
        for _ in range(WARMUP):
            env.step(scripted_action(env, rng, aim))
        start = env.state()
        env.reset(start)
        actions = []
        for _ in range(PLAN_STEPS):
            actions.append(scripted_action(env, rng, aim))
            env.step(actions[-1])
        tasks.append({"start": start, "goal": env.state(), "goal_frame": env.render().copy(),
                      "actions": np.array(actions)})  # fmt: skip
    return tasks

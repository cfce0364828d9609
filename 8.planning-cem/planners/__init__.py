"""The planners: random shooting, CEM, gradient descent, MPC, and the objectives they minimise.

Each search has a single-task form (``*_one``: tensors (S, H, A)) and a batched form (the same
algorithm on (B, S, H, A): B tasks planned together, the world model run once per iteration for all).
"""

from .cem import cem, cem_one
from .gradient import gradient_plan, gradient_plan_one
from .mpc import mpc
from .noise import task_generators
from .objective import model_cost, oracle_cost, oracle_fields
from .random_shooting import random_shooting, random_shooting_one

__all__ = [
    "cem",
    "cem_one",
    "gradient_plan",
    "gradient_plan_one",
    "model_cost",
    "mpc",
    "oracle_cost",
    "oracle_fields",
    "random_shooting",
    "random_shooting_one",
    "task_generators",
]

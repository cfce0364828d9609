"""The planners: random shooting, CEM, gradient descent, MPC, and the objectives they minimise."""

from .cem import cem
from .gradient import gradient_plan
from .mpc import mpc
from .objective import model_cost, oracle_cost, oracle_fields
from .random_shooting import random_shooting

__all__ = ["cem", "gradient_plan", "model_cost", "mpc", "oracle_cost", "oracle_fields", "random_shooting"]

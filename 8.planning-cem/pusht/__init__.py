"""PushT (gym-pusht), the chapter's external benchmark, in three files: world.py (the env, a copy of its
physics for the oracle, the pose cost, DINO-WM's tasks and success rule), data.py (the training
trajectories, cached as a Hugging Face dataset) and plan.py (MPC-CEM with the oracle or the learned model,
and the table ``validate.py --env pusht`` prints). gym-pusht itself is imported only when an env is made.
"""

from .data import load_pusht_trajectories
from .plan import PUSHT_PLAN, PUSHT_VAL, QUICK_PUSHT, validate_pusht
from .world import PushT, make_pusht_tasks, pusht_success

__all__ = [
    "PUSHT_PLAN",
    "PUSHT_VAL",
    "QUICK_PUSHT",
    "PushT",
    "load_pusht_trajectories",
    "make_pusht_tasks",
    "pusht_success",
    "validate_pusht",
]

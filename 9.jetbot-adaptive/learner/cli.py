"""What the learner's two examples share: their flags and the learner built from them (part 1's
examples share theirs in robots/runner/cli.py). Light to import: the model code loads only when the
learner is built, so the JetBot example can check the camera first."""

from __future__ import annotations

import argparse

from .utils import UserError


def add_learner_flags(p: argparse.ArgumentParser, steps: int, robot: str) -> None:
    """The flags both examples take: the budget, the view, recording, seed, checkpoints, typing actions."""
    p.add_argument("--steps", type=int, default=steps, help="total loop steps (a resumed run continues)")
    p.add_argument("--no-display", action="store_true", help="no window: write view.png instead")
    p.add_argument("--record", action="store_true", help="record the session (part 1's RecordingRobot)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help=f"default: checkpoints/{robot}")
    p.add_argument("--interactive", action="store_true", help="type each action (enter accepts the model's)")
    p.add_argument("--wandb-project", default=None, help="also log to Weights & Biases (if installed)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: the free cores)")


def build_learner(robot, a: argparse.Namespace, cfg):
    """The learner around ``robot`` with the flags ``a``, resumed from its checkpoint folder if there is
    one; a checkpoint that does not load is a one-line UserError."""
    from .adaptive_world_model import AdaptiveWorldModel

    try:
        return AdaptiveWorldModel(
            robot,
            checkpoint_dir=a.checkpoint_dir,
            config=cfg,
            seed=a.seed,
            display=not a.no_display and None,
            interactive=a.interactive,
            wandb_project=a.wandb_project,
        )
    except (ValueError, RuntimeError) as e:
        from robots import RobotConnectionError

        if isinstance(e, RobotConnectionError):
            raise UserError(f"lost the robot before the first step ({e})") from e
        raise UserError(f"cannot resume: {str(e).splitlines()[0]}") from e

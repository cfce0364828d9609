"""Action selectors: where the action comes from when nothing is learning yet.

An action selector is any callable ``observation -> (action, metadata)``: it looks at the current frame
(H, W, 3) uint8 and returns one action dict from the robot's ``action_space`` plus a dict of anything
worth logging (which rule chose it, a position in a sequence, a model's uncertainty...). Returning
``(None, metadata)`` means "I have no more actions": the runner stops cleanly.

Sequences are written as indices into the robot's action space, so the same sequence drives the
toroidal dot (0 = stay, 1 = move right) and the JetBot (0 = stop, 1 = right wheel forward).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ActionSelector = Callable[[np.ndarray], tuple[dict | None, dict]]

SEQUENCE_ALWAYS_STAY = (0,)
SEQUENCE_ALWAYS_MOVE = (1,)
SEQUENCE_ALTERNATE = (0, 1)  # stay, move, stay, move, ...
SEQUENCE_DOUBLE_MOVE = (1, 1, 0)  # move twice, then stay once
SEQUENCE_TRIPLE_MOVE = (1, 1, 1, 0)  # move three times, then stay once

SEQUENCES = {
    "always_stay": SEQUENCE_ALWAYS_STAY,
    "always_move": SEQUENCE_ALWAYS_MOVE,
    "alternate": SEQUENCE_ALTERNATE,
    "double_move": SEQUENCE_DOUBLE_MOVE,
    "triple_move": SEQUENCE_TRIPLE_MOVE,
}


def _resolve(action_space: Sequence[dict], item: int | dict) -> dict:
    """An index into ``action_space`` or an action dict -> a copy of the action dict (checked)."""
    if isinstance(item, dict):
        return dict(item)
    if not isinstance(item, int | np.integer) or not 0 <= int(item) < len(action_space):
        raise ValueError(f"action index {item!r} is not in 0..{len(action_space) - 1} for this robot")
    return dict(action_space[int(item)])


def create_constant_action_selector(action: dict) -> ActionSelector:
    """A selector that always returns ``action`` (a dict such as ``{"action": 1}``)."""
    if not isinstance(action, dict):
        raise ValueError(f"a constant selector needs an action dict, got {action!r}")

    def select(observation: np.ndarray) -> tuple[dict, dict]:
        """Ignore the frame; return the constant action."""
        return dict(action), {"selector": "constant"}

    return select


def create_sequence_action_selector(
    action_space: Sequence[dict], sequence: Sequence[int | dict] = SEQUENCE_ALTERNATE, repeat: bool = True
) -> ActionSelector:
    """A selector that walks through ``sequence`` (indices into ``action_space`` or action dicts).

    With ``repeat`` it cycles forever; without, it returns ``(None, ...)`` after the last item.
    """
    actions = [_resolve(action_space, item) for item in sequence]  # fail now, not mid-run
    if not actions:
        raise ValueError("an action sequence needs at least one action")
    position = 0

    def select(observation: np.ndarray) -> tuple[dict | None, dict]:
        """Return the next action of the sequence and where in the sequence it was."""
        nonlocal position
        if position >= len(actions) and not repeat:
            return None, {"selector": "sequence", "finished": True}
        index = position % len(actions)
        position += 1
        return dict(actions[index]), {"selector": "sequence", "position": index}

    return select


def create_random_action_selector(action_space: Sequence[dict], seed: int | None = None) -> ActionSelector:
    """A selector that picks uniformly among ``action_space``, reproducibly for a ``seed``."""
    rng = np.random.default_rng(seed)
    space = [dict(a) for a in action_space]

    def select(observation: np.ndarray) -> tuple[dict, dict]:
        """Return a uniformly random action."""
        index = int(rng.integers(len(space)))
        return dict(space[index]), {"selector": "random", "index": index}

    return select

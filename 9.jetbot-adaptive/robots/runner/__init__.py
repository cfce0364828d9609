"""Running robots without learning: the RobotRunner loop and pluggable action selectors."""

from .runner import RobotRunner, action_key, parse_typed_action
from .selectors import (
    SEQUENCE_ALTERNATE,
    SEQUENCE_ALWAYS_MOVE,
    SEQUENCE_ALWAYS_STAY,
    SEQUENCE_DOUBLE_MOVE,
    SEQUENCE_TRIPLE_MOVE,
    SEQUENCES,
    ActionSelector,
    create_constant_action_selector,
    create_random_action_selector,
    create_sequence_action_selector,
)

__all__ = [
    "SEQUENCE_ALTERNATE",
    "SEQUENCE_ALWAYS_MOVE",
    "SEQUENCE_ALWAYS_STAY",
    "SEQUENCE_DOUBLE_MOVE",
    "SEQUENCE_TRIPLE_MOVE",
    "SEQUENCES",
    "ActionSelector",
    "RobotRunner",
    "action_key",
    "create_constant_action_selector",
    "create_random_action_selector",
    "create_sequence_action_selector",
    "parse_typed_action",
]

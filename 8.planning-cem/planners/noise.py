"""One random stream per task, so that a task's plan does not depend on which other tasks share its batch.

A batched planner draws its sampling noise task by task from that task's own generator: planned alone
or in a batch of 200, task 7 sees the same noise and (up to float rounding) gets the same plan. That is
what makes the batched path checkable against the single-task one (tests/test_planners.py).
"""

from __future__ import annotations

import torch


def task_generators(seed: int, n: int) -> list[torch.Generator]:
    """``n`` generators, task i's seeded from (seed, i): the same task gets the same stream in any batch."""
    return [torch.Generator().manual_seed(seed * 1_000_003 + i) for i in range(n)]


def draw(gen, b: int, shape: tuple[int, ...], kind: str = "normal") -> torch.Tensor:
    """Noise of shape (B, *shape): "normal" (standard) or "uniform" (in [-1, 1]).

    Args:
        gen: a list of B generators (one stream per task), one generator for the whole batch, or None.
    """
    rand = (
        torch.randn
        if kind == "normal"
        else lambda *s, generator=None: torch.rand(*s, generator=generator) * 2 - 1
    )
    if isinstance(gen, (list, tuple)):
        if len(gen) != b:
            raise ValueError(f"need one generator per task: {b} tasks, {len(gen)} generators")
        return torch.stack([rand(*shape, generator=g) for g in gen])  # (B, *shape)
    return rand(b, *shape, generator=gen)

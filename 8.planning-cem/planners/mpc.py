"""Model-predictive control (MPC): plan, execute only the first k actions in the real world, re-plan.

A learned model is wrong, and its errors compound with every imagined step. MPC turns that into a
small problem: after k actions the planner looks at the *real* observation again, so an error only has
to be survived for k steps. Each new plan starts from the previous one shifted by k steps (a warm
start), so the planner refines instead of starting over. With k = n_steps and horizon = n_steps the
same loop is open-loop planning: plan once, execute everything, never look again.

Shape key: B episodes run together, H horizon, A action dims.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm


def mpc(
    env, make_cost, planner, horizon: int, n_steps: int, execute=1, batch=1, action_dim=2, desc=None,
    to_the_end=False,
):  # fmt: skip
    """Run ``batch`` episodes in lockstep (one robot each; batching only shares the arithmetic).

    Args:
        env: has ``step(actions (B, A))`` (the real simulators); make_cost(env) -> cost_fn reads the
            current observations from it. planner(cost_fn, mean (B, H, A)) -> (plan (B, H, A), history).
        horizon: H, actions per plan. n_steps: actions per episode. execute: k, actions executed per plan
            before re-planning. batch: B, episodes run together. desc: show a progress bar with this label.
        to_the_end: plan only up to the episode's last action (the horizon shrinks to the actions left):
            for tasks judged at the end of a fixed episode (PushT), so no plan is scored past the end.
    Returns:
        {"actions": (B, n_steps, A) executed, "plan_seconds": [seconds per plan for the whole batch],
         "replans": plans made, "history": (B, iterations) the first plan's cost per iteration,
         "first_plan": (B, H, A)}
    """
    if not 1 <= execute <= horizon:
        raise ValueError(f"execute must be in [1, horizon={horizon}], got {execute}")
    mean = torch.zeros(batch, horizon, action_dim)  # (B, H, A)
    done, actions, seconds, out = 0, [], [], {}
    bar = tqdm(total=n_steps, desc=desc, disable=desc is None, leave=False, mininterval=2.0)
    while done < n_steps:
        t0 = time.perf_counter()
        h = min(horizon, n_steps - done) if to_the_end else horizon  # actions in this plan
        plan, history = planner(make_cost(env), mean[:, :h])  # (B, h, A)
        seconds.append(time.perf_counter() - t0)
        if not out:
            hist = torch.stack(history, dim=1) if history else torch.zeros(batch, 0)
            out = {"history": hist.numpy(), "first_plan": plan.numpy()}
        k = min(execute, n_steps - done)
        for i in range(k):
            a = plan[:, i].clamp(-1, 1).numpy().astype(np.float64)  # (B, A)
            env.step(a)  # the real world moves; the next plan sees where it really went
            actions.append(a)
        done += k
        bar.update(k)
        pad = torch.zeros(batch, horizon - h + k, action_dim)
        mean = torch.cat([plan[:, k:], pad], dim=1)  # (B, H, A) warm start: the plan shifted by k
    bar.close()
    return {**out, "actions": np.stack(actions, 1), "plan_seconds": seconds, "replans": len(seconds)}

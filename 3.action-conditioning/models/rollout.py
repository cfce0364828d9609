"""Dreaming: roll a dynamics model forward on its own predictions, and the counterfactual test.

Shape key: B batch, H horizon (steps), N tokens per frame (256 latent cells), P values per token (4),
K actions compared, A action dims.
"""

from __future__ import annotations

import torch

from .transformer import ActionDynamics, snap_to_grid


def snap_ste(tok: torch.Tensor, levels) -> torch.Tensor:
    """Snap to the FSQ grid in the forward pass, identity in the backward pass (as FSQ's own rounding)."""
    return tok + (snap_to_grid(tok, levels) - tok).detach()


def rollout(
    model: ActionDynamics, start: torch.Tensor, actions: torch.Tensor, snap: bool = True
) -> torch.Tensor:
    """Open loop: from true start tokens, feed the model its own predictions under the given actions.

    Args:
        start: (B, N, P) tokens of the first frame (the worlds are Markov: one frame is a full context).
        actions: (B, H) int64 or (B, H, A) float: action k is taken at predicted step k.
        snap: regression head only: snap each prediction to the FSQ grid before it is fed back
            (straight-through, so this also works inside a training loss). The classification head
            always yields valid codes (its argmax has no gradient: use it without a rollout loss).
    Returns:
        (B, H, N, P) predicted tokens of frames 1..H. Gradients flow unless the caller uses no_grad.
    """
    frames, preds = [start], []
    horizon, window = actions.shape[1], model.max_frames
    for k in range(horizon):
        lo = max(0, k + 1 - window)  # keep at most max_frames frames of context
        seq = torch.stack(frames[lo:], dim=1)  # (B, <=W, N, P)
        out = model(seq, actions[:, lo : k + 1])[:, -1]  # prediction of frame k+1
        if model.head_kind == "regression":
            nxt = snap_ste(out, model.levels) if snap else out  # (B, N, P)
        else:
            nxt = model.to_tokens(out)  # (B, N, P) argmax codes
        frames.append(nxt)
        preds.append(nxt)
    return torch.stack(preds, dim=1)


@torch.no_grad()
def counterfactual_spread(model: ActionDynamics, start: torch.Tensor, action_set: torch.Tensor, steps=3):
    """Same start frame, different actions: how different are the imagined futures?

    Every start is rolled out ``steps`` steps under each action of ``action_set`` held constant. The
    spread is the standard deviation across actions of the final predicted tokens, averaged over tokens
    and starts. A model that ignores its action dreams one future for all of them: spread 0 exactly.

    Args:
        start: (B, N, P) start tokens. action_set: (K,) int64 or (K, A) float, K >= 2 actions to compare.
    Returns:
        a float >= 0.
    """
    b, k = start.shape[0], action_set.shape[0]
    starts = start.repeat_interleave(k, dim=0)  # (B*K, N, P) each start K times
    acts = action_set.repeat(b, *([1] * (action_set.dim() - 1)))  # (B*K,) or (B*K, A)
    acts = acts[:, None].expand(-1, steps, *acts.shape[1:])  # (B*K, steps[, A]) held constant
    final = rollout(model, starts, acts)[:, -1]  # (B*K, N, P)
    final = final.view(b, k, *final.shape[1:])
    return final.std(dim=1).mean().item()

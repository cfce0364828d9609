"""Choosing what to do next: predict the outcome of every action, and try the one the learner is least
sure about (the seed's uncertainty-driven exploration), or hand the choice to a part-1 selector.

For every action the predicted next frame goes to the action classifier, which must say which action
that frame shows; its predictive entropy is the learner's uncertainty about the action. The choice:

- with probability EXPLORATION_EPSILON, or before any prediction exists: a random action;
- when every entropy is below ENTROPY_FLOOR (sure of every action): a random action, because the
  argmax then compares noise (measured: it picked "stay" 84 % of the time and starved the predictor);
- otherwise the highest-entropy action, near-ties (within ENTROPY_TIE nats) broken at random.

``ActingMixin`` expects the attributes that ``AdaptiveWorldModel.__init__`` creates.
Shape key: H history, N tokens, D latent width, K actions, S frame side.
"""

from __future__ import annotations

import numpy as np
import torch

from models import decode_prediction


class ActingMixin:
    """Prediction for every action and the uncertainty-driven choice (see the module docstring)."""

    def reset_history(self) -> None:
        """The next observation does not follow the last one (an episode reset): start a new segment."""
        self.buffer.new_segment()
        self.need_frame, self.last = True, {}

    def _current_history(self) -> torch.Tensor | None:
        """Frames (H, 3, S, S) and past action indices (H-1,) of the current segment, or None."""
        h, b = self.cfg.PREDICTION_HISTORY_SIZE, self.buffer
        if b.count < h:
            return None
        idx = torch.arange(b.count - h, b.count) % b.capacity
        if (b.segments[idx] != b.segment).any() or (b.actions[idx[:-1]] < 0).any():
            return None
        return b.frames[idx].float() / 255.0, b.actions[idx[:-1]]

    @torch.no_grad()
    def predict_all(self, frames: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions for every action. frames: (H, 3, S, S); past: (H-1,) action indices.

        Returns predicted frames (K, 3, S, S) and the classifier's predictive entropy per action (K,).
        """
        k, pred = len(self.action_space), self.predictor
        z = self.codec.encode(frames.to(self.device))[None].expand(k, -1, -1, -1)  # (K, H, N, D)
        idx = torch.cat([past[None].expand(k, -1), torch.arange(k)[:, None]], dim=1)  # (K, H)
        z_next = pred(z, self.table[idx].to(self.device))
        last = frames[-1:].to(self.device).expand(k, -1, -1, -1)  # (K, 3, S, S)
        base = self.codec.decode(z[:1, -1]).expand(k, -1, -1, -1)  # D(z_t), the same for every action
        pf = decode_prediction(self.codec, z_next, z[:, -1], last, base=base)  # (K, 3, S, S)
        probs = pred.classifier(pf - frames[-1].to(self.device)).softmax(dim=-1)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1)
        return pf.clamp(0, 1).cpu(), entropy.cpu()  # a pixel outside [0, 1] is wrong for certain

    def _choose(self, frame_np: np.ndarray, entropy: torch.Tensor | None) -> tuple[dict | None, dict]:
        """Pick the next action: a part-1 selector, the user, or uncertainty with epsilon exploration."""
        if self.selector is not None:
            return self.selector(frame_np)
        if entropy is None or self.rng.random() < self.cfg.EXPLORATION_EPSILON:
            choice, meta = int(self.rng.integers(len(self.action_space))), {"reason": "random"}
        elif float(entropy.max()) < self.cfg.ENTROPY_FLOOR:  # sure of every action: uncertainty says nothing
            choice, meta = int(self.rng.integers(len(self.action_space))), {"reason": "all_certain"}
        else:  # the most uncertain action; near-ties (within ENTROPY_TIE nats) are broken at random
            tied = (entropy >= entropy.max() - self.cfg.ENTROPY_TIE).nonzero()[:, 0]  # (number tied,)
            choice = int(tied[self.rng.integers(len(tied))])
            meta = {"reason": "max_entropy" if len(tied) == 1 else "tie", "entropy": entropy.tolist()}
        if self.interactive:
            typed = input(f"action index 0-{len(self.action_space) - 1} (enter = {choice}): ").strip()
            if typed.isdigit() and int(typed) < len(self.action_space):
                choice, meta = int(typed), {"reason": "typed"}
        return self.action_space[choice], meta

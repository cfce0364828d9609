"""How much of its own predicted change the learner reports: the trust share, fitted per action.

The model predicts the next frame as the last frame plus a change, pred = last + delta. What the
learner *reports* is

    reported = last + share * delta,      share in [0, 1]    (0: copy-last-frame, 1: the model)

where ``share`` is the scale that would have served best on the last TRUST_WINDOW fresh predictions
*of the same action*, each scored on the frame that really followed (least squares in hindsight):

    share = sum_i <delta_i, r_i> / sum_i <delta_i, delta_i>,   r_i = next_i - last_i (the true change)

Why: a model that has seen a few dozen frames predicts a change whose direction is partly right and
whose size is partly noise. Reporting all of it (share 1) or none of it (share 0, the binary gate this
replaced) throws away what is right in it; the fitted share keeps the part that has been right so far.
Why per action: on "stay" copying is (nearly) exact and a predicted change is noise (the share falls to 0),
while after "move" only the model can be right. The share changes what is reported, never what is
learned: the predictor trains on its own, unscaled prediction, and validate.py scores that one.

Inner products are taken in the geometry of ``relative_weighted_mse`` (the error every number of the
learner uses), from three squared norms (the polarisation identity):
<delta, r> = (|delta|^2 + |r|^2 - |delta - r|^2) / 2, with |r|^2 the copy-last error and
|delta - r|^2 the model's error.

Shape key: S frame side.
"""

from __future__ import annotations

import torch

from models import relative_weighted_mse


class TrustMixin:
    """``trust_share`` and ``score_prediction`` of the adaptive world model (they read ``self.history``,
    ``self.last`` and ``self.cfg``, which AdaptiveWorldModel creates)."""

    def trust_share(self, action: int) -> float:
        """The share of the model's predicted change to report for ``action``, in [0, 1].

        Fitted on the last TRUST_WINDOW scored predictions of this action; 0 (copy-last) until that many
        exist. TRUST_WINDOW 0 reports the model unscaled (share 1). Reads only ``self.history``, so a
        resumed learner keeps its share.
        """
        w = self.cfg.TRUST_WINDOW
        if w <= 0:
            return 1.0
        seen = [h for h in self.history if h.get("pred_action") == action][-w:]
        if len(seen) < w:
            return 0.0
        change_sq = sum(h["change_size"] for h in seen)  # sum |delta|^2
        along = sum(h["change_size"] + h["copy_last_error"] - h["fresh_pred_error"] for h in seen) / 2
        return min(max(along / change_sq, 0.0), 1.0) if change_sq > 0 else 0.0  # sum <delta, r> / |delta|^2

    def score_prediction(self, x: torch.Tensor) -> dict:
        """Score the last step's prediction on the frame that followed; x: (3, S, S) in [0, 1].

        Returns the entries the trust share and the example's summary read: the action predicted, the
        copy-last error, the size of the predicted change, the share used and the reported error (the
        model's own error, ``fresh_pred_error``, is computed by the caller for every step).
        """
        fg, last, pred = self.cfg.FG_WEIGHT, self.last["frame"], self.last["pred_taken"]
        return {
            "pred_action": self.last["action"],
            "copy_last_error": float(relative_weighted_mse(last, x, fg)),  # |r|^2
            "change_size": float(relative_weighted_mse(x + (pred - last), x, fg)),  # |delta|^2, x's weights
            "model_share": self.last["share"],  # decided before x was seen
            "reported_error": float(relative_weighted_mse(self.last["pred_reported"], x, fg)),
        }

    def report(self) -> None:
        """Decide what to report for the prediction just made (self.last), from the history so far."""
        last = self.last
        last["share"] = s = self.trust_share(last["action"])
        last["pred_reported"] = last["frame"] + s * (last["pred_taken"] - last["frame"])  # (3, S, S)

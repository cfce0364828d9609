"""The adaptive world model: a robot that learns while it acts.

One loop, forever:  perceive -> (gate) -> learn -> predict every action -> choose -> act.

- Perceive: resize the camera frame, store it in the replay buffer.
- Gate on quality: while the autoencoder reconstructs the current frame worse than
  RECONSTRUCTION_THRESHOLD the robot waits and only the autoencoder trains (a predictor built on
  latents that do not yet describe the scene would learn noise).
- Learn: when the last prediction for the action actually taken missed by more than
  PREDICTION_THRESHOLD, one joint step trains predictor and autoencoder together (the predictor's
  losses flow into the encoder) on the fresh transition plus replayed ones.
- Choose: the action whose predicted outcome the action classifier is least sure about (highest
  predictive entropy; near-ties at random), with EXPLORATION_EPSILON random actions; or any part-1
  action selector (learner/acting.py).
- Trust: the learner *reports* the last frame plus a share of the model's predicted change, the share
  fitted per action on its last TRUST_WINDOW scored predictions (learner/trust.py); 0 = copy-last.
- Persist: every CHECKPOINT_INTERVAL predictor steps (see learner/persistence.py).

Shape key: B batch, H history, N tokens, D latent width, K actions, S frame side.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
from config import MAX_BAD_FRAMES, AdaptiveWorldModelConfig
from robots import RobotConnectionError

from .acting import ActingMixin
from .build import build_codec, build_predictor
from .logs import MetricsLogger, Viewer, render_view, timing_stats
from .persistence import PersistenceMixin
from .replay_buffer import ReplayBuffer
from .training import TrainingMixin
from .trust import TrustMixin
from .utils import action_index, action_to_vector, preprocess_frame
from models import relative_weighted_mse


class AdaptiveWorldModel(ActingMixin, TrainingMixin, PersistenceMixin, TrustMixin):
    """The online learner around one robot (any RobotInterface)."""

    def __init__(
        self,
        robot,
        action_selector=None,
        checkpoint_dir: str | Path | None = None,
        wandb_project: str | None = None,
        interactive: bool = False,
        config: AdaptiveWorldModelConfig | None = None,
        device: str | torch.device = "cpu",
        log_dir: str | Path | None = None,
        display: bool | None = None,
        seed: int = 0,
        resume: bool = True,
        log=print,
    ):
        """robot: a RobotInterface; action_selector: None (uncertainty-driven) or a callable
        observation -> (action_dict, metadata); checkpoint_dir / log_dir: default per robot (config);
        interactive: ask on stdin for each action; display: None = window if a display exists."""
        self.cfg = cfg = config or AdaptiveWorldModelConfig()
        self.robot, self.selector, self.interactive, self.log = robot, action_selector, interactive, log
        self.device = torch.device(device)
        self.action_space = list(robot.action_space)
        self.table = torch.tensor([action_to_vector(a, cfg.ACTION_CHANNELS) for a in self.action_space])
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else cfg.checkpoint_dir
        log_dir = Path(log_dir) if log_dir else cfg.log_dir
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.codec = build_codec(cfg).to(self.device)
        # fused: one kernel for all parameters instead of a loop over them (half the CPU time, measured)
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.ae_opt = torch.optim.AdamW(
            self.codec.parameters(), lr=cfg.AUTOENCODER_LR, weight_decay=0.0, **fused
        )
        self.predictor = build_predictor(cfg, len(self.action_space)).to(self.device)
        self.pred_opt = torch.optim.AdamW(
            self.predictor.parameters(), lr=cfg.PREDICTOR_LR, weight_decay=0.0, **fused
        )
        self.buffer = ReplayBuffer(cfg.REPLAY_SIZE, cfg.MODEL_IMG_SIZE)
        self.step_count, self.ae_steps, self.train_seconds = 0, 0, 0.0
        self.pred_steps = 0
        self.gated_in_row, self.need_frame, self.last = 0, True, {}
        self.history = deque(maxlen=cfg.HISTORY_TO_SAVE)
        self.exec_times, self.loop_times = deque(maxlen=500), deque(maxlen=500)
        self.resumed_from = self._resume() if resume else None
        self.logger = MetricsLogger(log_dir, wandb_project, cfg.to_dict())
        self.viewer = Viewer(log_dir, display)

    def step(self) -> dict:
        """One pass of the loop; returns a record of what happened (losses, action, timings)."""
        t0, cfg = time.perf_counter(), self.cfg
        frame_np = self.robot.get_observation()
        if frame_np is None:
            return {"step": self.step_count, "skipped": "no observation"}
        x = preprocess_frame(frame_np, cfg.MODEL_IMG_SIZE)
        new_frame, self.need_frame = self.need_frame, False  # the first frame since the last action?
        if new_frame:
            self.buffer.append(x)
        rec, shown_pred = {"step": self.step_count}, self.last.get("pred_taken")
        if shown_pred is not None:  # how wrong was the prediction for the action we took?
            rec["fresh_pred_error"] = float(relative_weighted_mse(shown_pred, x, cfg.FG_WEIGHT))
        if shown_pred is not None and new_frame:  # scored against copy-last once, not again while waiting
            rec.update(self.score_prediction(x))  # and what was reported (learner/trust.py)
        with torch.no_grad():
            decoded = self.codec.decode(self.codec.encode(x[None].to(self.device)))[0].cpu()
        rec["recon_loss"] = recon = float(relative_weighted_mse(decoded, x, cfg.FG_WEIGHT))  # 1 = all black
        gated = recon > cfg.RECONSTRUCTION_THRESHOLD and self.gated_in_row < cfg.MAX_GATED_STEPS
        rec["gated"] = gated
        rec.update(self.learn(recon, rec.get("fresh_pred_error")))
        action, entropy, preds = None, None, []
        if not gated:
            hist = self._current_history()
            if hist is not None:
                preds, entropy = self.predict_all(*hist)
            action, meta = self._choose(frame_np, entropy)
            rec["action_meta"] = meta
        if action is None and not gated:
            rec["stop"] = "selector returned no action"
            return rec
        if gated:
            self.gated_in_row += 1
        else:
            self.gated_in_row = 0
            idx = action_index(action, self.action_space)
            t1 = time.perf_counter()
            self.robot.execute_action(action)  # RobotConnectionError propagates to run()
            self.exec_times.append(time.perf_counter() - t1)
            if cfg.ACTION_DELAY > 0:
                time.sleep(cfg.ACTION_DELAY)
            self.buffer.set_last_action(idx)
            self.need_frame = True
            pred_taken = preds[idx] if len(preds) else None
            self.last = {"pred_taken": pred_taken, "pred_all": preds, "frame": x, "action": idx}
            if entropy is not None:
                self.last["entropy_taken"] = float(entropy[idx])
            if self.last["pred_taken"] is None:
                del self.last["pred_taken"]
            rec["action"] = idx
        self._after_step(rec, x, decoded, recon, t0, shown_pred)
        return rec

    def _after_step(self, rec, x, decoded, recon, t0, shown_pred) -> None:
        """Counters, history, logging, the view and the periodic checkpoint."""
        cfg = self.cfg
        self.loop_times.append(time.perf_counter() - t0)
        self.step_count += 1
        self.history.append({k: v for k, v in rec.items() if k != "action_meta"})
        if "pred_taken" in self.last and "share" not in self.last:  # a new prediction: what to report
            self.report()  # of it, from the history up to this frame (learner/trust.py)
        if self.step_count % cfg.LOG_INTERVAL == 0:
            self.logger.log({**rec, **self.timing_stats()})
        show = self.step_count % cfg.DISPLAY_INTERVAL == 0
        if self.viewer.window or show:
            names = [str(a) for a in self.action_space]
            img = render_view(
                x,
                decoded,
                recon,
                shown_pred,
                x if shown_pred is not None else None,
                rec.get("fresh_pred_error", 0.0),
                list(self.last.get("pred_all", [])),
                names,
            )
            self.viewer.show(img, show)

    def timing_stats(self) -> dict:
        """Loop steps per second and action-execution time statistics over the recent steps."""
        return timing_stats(self.loop_times, self.exec_times)

    def run(self, steps: int, progress: bool = True, on_step=None, dashboard: bool = True) -> dict:
        """Run until ``steps`` loop steps have been taken in total (a resumed run continues its count).

        A checkpoint is saved however the run ends; stop_reason says how: 'done', 'connection_lost: ...',
        'no frames: ...' (MAX_BAD_FRAMES unusable observations in a row, naming what the robot sent),
        'interrupted' (Ctrl-C) or the selector's own reason.
        on_step(learner, record) is called after every step (train.py uses it to reset episodes).
        """
        from tqdm import tqdm

        reason, start, missing, first_step = "done", time.perf_counter(), 0, self.step_count
        # disable=None: no bar when stderr is not a terminal (pipes, tests), so an error stays one line
        bar = tqdm(
            total=steps, initial=min(self.step_count, steps), disable=None if progress else True, desc="steps"
        )
        try:
            while self.step_count < steps:
                t = time.perf_counter()
                rec = self.step()
                self.train_seconds += time.perf_counter() - t
                if "stop" in rec:
                    reason = rec["stop"]
                    break
                missing = missing + 1 if "skipped" in rec else 0
                if missing and getattr(self.robot, "finished", False):  # a replayed session at its end
                    reason = "robot finished"
                    break
                if missing > MAX_BAD_FRAMES:
                    sent = getattr(self.robot, "last_failure", None) or "nothing"
                    reason = (
                        f"no frames: {missing} observations in a row were unusable; the last one was {sent}"
                    )
                    break
                if missing:
                    time.sleep(0.05)  # give the camera a moment
                if "skipped" not in rec:
                    bar.update(1)
                    if "total_loss" in rec:
                        bar.set_postfix(recon=f"{rec['recon_loss']:.4f}", pred=f"{rec['total_loss']:.3f}")
                if on_step is not None:
                    on_step(self, rec)
        except RobotConnectionError as e:
            reason = f"connection_lost: {e}"
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            bar.close()
            self.save()
            if dashboard and self.step_count > first_step:  # matplotlib costs seconds: only with news
                self.logger.dashboard()
        return {
            "steps": self.step_count,
            "seconds": time.perf_counter() - start,
            "stop_reason": reason,
            **self.timing_stats(),
        }

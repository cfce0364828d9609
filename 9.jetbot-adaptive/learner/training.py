"""The learner's training steps: autoencoder alone (while gated), joint predictor + autoencoder
(level 0), predictor alone (higher levels), and the rule that grows the hierarchy.

Kept apart from adaptive_world_model.py so each file reads in one sitting; ``TrainingMixin`` expects
the attributes that ``AdaptiveWorldModel.__init__`` creates (codec, predictors, optimisers, buffer...).
Shape key: B batch, H history, N tokens, D latent width, S frame side.
"""

from __future__ import annotations

import torch

from .replay_buffer import chunk_vectors, rng_choice
from models import decode_prediction, explained_variance, patchify, predictor_losses


def grad_norm(params) -> float:
    """L2 norm of all gradients of ``params`` (0 when none)."""
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


class TrainingMixin:
    """Training methods of the adaptive world model (see the module docstring)."""

    def loss_weights(self) -> dict:
        """The triple-loss weights from the config."""
        c = self.cfg
        return {"patch": c.PATCH_LOSS_WEIGHT, "latent": c.LATENT_LOSS_WEIGHT, "action": c.ACTION_LOSS_WEIGHT}

    def learn(self, recon: float, fresh_err: float | None) -> dict:
        """Decide what to train this step (module docstring of adaptive_world_model.py) and do it.

        recon: the reconstruction loss of the current frame. Above RECONSTRUCTION_THRESHOLD only the
        autoencoder trains, even when the safety valve lets the robot act: measured, joint steps taken
        before the codec could draw the dot (their gradients are ~100x the reconstruction's and
        inflate Adam's step-size memory) kept it on the all-black plateau for 750+ steps.
        """
        cfg, out = self.cfg, {}
        ends = self.buffer.valid_ends(cfg.PREDICTION_HISTORY_SIZE, 1)
        # Train when the last prediction missed, or when the model was unsure of the action it chose:
        # measured, with the miss alone the learner kept choosing its most uncertain action ("stay"),
        # whose outcome it predicted perfectly, so nothing ever trained its uncertainty away.
        unsure = self.last.get("entropy_taken", 0.0) > cfg.ENTROPY_FLOOR
        wants_pred = fresh_err is None or fresh_err > cfg.PREDICTION_THRESHOLD or unsure
        codec_ready = recon <= cfg.RECONSTRUCTION_THRESHOLD
        if codec_ready and len(ends) and wants_pred:
            for _ in range(cfg.UPDATES_PER_STEP):
                out.update(self.train_predictor(0, ends))
        elif not codec_ready or len(ends) == 0:
            for _ in range(cfg.UPDATES_PER_STEP):
                out.update(self.train_autoencoder())
        if self.step_count % cfg.HIGHER_LEVEL_TRAIN_EVERY == 0:
            for level in range(1, len(self.predictors)):
                ends_k = self.buffer.valid_ends(cfg.PREDICTION_HISTORY_SIZE, cfg.LEVEL_CHUNK**level)
                if len(ends_k):
                    out.update(self.train_predictor(level, ends_k))
        return out

    def train_autoencoder(self) -> dict:
        """One autoencoder step on the newest frame plus replayed frames (B of them)."""
        b = self.buffer
        n = min(b.count, b.capacity)
        ids = rng_choice(self.rng, list(range(b.count - n, b.count)), self.cfg.BATCH_SIZE, b.count - 1)
        x = (b.frames[torch.tensor(ids) % b.capacity].float() / 255.0).to(self.device)
        loss, recon, info = self.codec.reconstruction_loss(x)
        self.ae_opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = grad_norm(self.codec.parameters())
        torch.nn.utils.clip_grad_norm_(self.codec.parameters(), self.cfg.GRAD_CLIP)
        self.ae_opt.step()
        self.ae_steps += 1
        return {
            "ae_train_loss": float(loss.detach()),
            "mask_ratio": info["mask_ratio"],
            "grad_norm/autoencoder": gn,
        }

    def train_predictor(self, level: int, ends) -> dict:
        """One step of the level-``level`` predictor on the freshest sample plus replayed ones.

        Level 0 trains jointly with the autoencoder (reconstruction loss of the newest history frame
        plus the triple loss, gradients into the encoder); higher levels leave the codec untouched.
        """
        cfg, h, k = self.cfg, self.cfg.PREDICTION_HISTORY_SIZE, len(self.action_space)
        chunk, pred, opt = cfg.LEVEL_CHUNK**level, self.predictors[level], self.pred_opts[level]
        fresh = int(ends[-1]) if level == 0 and ends[-1] == self.buffer.count - 1 else None
        ids = rng_choice(self.rng, list(ends), cfg.BATCH_SIZE, fresh)
        batch = self.buffer.sample(ids, h, chunk, k)
        f = batch["frames"].to(self.device)  # (B, H+1, 3, S, S)
        acts = chunk_vectors(batch["action_idx"], self.table).to(self.device)  # (B, H, c*A)
        bsz = f.shape[0]
        joint = level == 0
        recon_loss, info, base = 0.0, {"mask_ratio": 0.0}, None
        if joint:  # the newest history frame is encoded with gradients: predictor losses reach the encoder
            recon_loss, base, info = self.codec.reconstruction_loss(f[:, h - 1])
            if info["tokens"] is None:  # the MAE saw a masked frame: encode (and later decode) it whole
                z_last, base = self.codec.encode(f[:, h - 1]), None
            else:
                z_last = info["tokens"]
        else:
            with torch.no_grad():
                z_last = self.codec.encode(f[:, h - 1])
        with torch.no_grad():
            z_old = self.codec.encode(f[:, : h - 1].flatten(0, 1))
            z_old = z_old.view(bsz, h - 1, *z_old.shape[1:])  # (B, H-1, N, D)
            z_tgt = self.codec.encode(f[:, h])  # (B, N, D)
        if joint:  # the encoder hears the predictor, scaled down: reconstruction stays in charge
            s = cfg.ENCODER_PRED_GRAD_SCALE
            z_last = z_last.detach() + s * (z_last - z_last.detach())  # same value, gradient x s
        z_pred = pred(torch.cat([z_old, z_last[:, None]], dim=1), acts)
        # The skip path (z_pred = z_last + delta) is detached before any loss: otherwise its gradient
        # pulls the encoder's latent of the current frame towards the next frame's (collapse). Measured:
        # with it, a codec that drew the dot well (loss 0.0004) fell back to all black within 400 joint
        # steps. The encoder still hears the predictor, through the transformer's input.
        z_pred = z_pred - z_last + z_last.detach()
        pf = decode_prediction(self.codec, z_pred, z_last.detach(), f[:, h - 1], True, base)  # (B, 3, S, S)
        a = cfg.ACTION_GRAD_SCALE  # how much the action loss may reshape the prediction itself
        logits = pred.classifier(pf.detach() + a * (pf - pf.detach()) - f[:, h - 1])
        z_for_latent = z_pred
        losses = predictor_losses(
            pf,
            f[:, h],
            z_for_latent,
            z_tgt,
            logits,
            batch["chunk_class"].to(self.device),
            cfg.FG_WEIGHT,
            8,
            self.loss_weights(),
            z_last.detach(),
        )
        total = losses["total"] + recon_loss
        log_now = self.step_count % cfg.LOG_INTERVAL == 0
        before = [p.detach().clone() for p in pred.parameters()] if log_now else None
        opt.zero_grad(set_to_none=True)
        self.ae_opt.zero_grad(set_to_none=True)
        total.backward()
        out = {f"L{level}/grad_norm/predictor": grad_norm(pred.parameters())}
        torch.nn.utils.clip_grad_norm_(pred.parameters(), cfg.GRAD_CLIP)
        opt.step()
        if joint:
            out["grad_norm/autoencoder"] = grad_norm(self.codec.parameters())
            torch.nn.utils.clip_grad_norm_(self.codec.parameters(), cfg.GRAD_CLIP)
            self.ae_opt.step()
            self.ae_steps += 1
            out.update({"ae_train_loss": float(recon_loss.detach()), "mask_ratio": info["mask_ratio"]})
        self.ae_opt.zero_grad(set_to_none=True)
        if (
            before is not None
        ):  # update-to-weight ratio: how far one step moves the weights (~1e-3 is healthy)
            num = (
                sum((p.detach() - b).norm() ** 2 for p, b in zip(pred.parameters(), before, strict=True))
                ** 0.5
            )
            den = sum(b.norm() ** 2 for b in before) ** 0.5
            out[f"L{level}/update_ratio"] = float(num / den.clamp_min(1e-12))
            out[f"L{level}/r2_patch"] = explained_variance(patchify(pf.detach(), 8), patchify(f[:, h], 8))
        for name in ("patch", "latent", "action", "total"):
            out[f"L{level}/{name}_loss"] = float(losses[name].detach())
        if level == 0:
            out["total_loss"] = float(losses["total"].detach())
        self.pred_steps[level] += 1
        self._grow_hierarchy(level, float(losses["patch"].detach()))
        if level == 0 and self.pred_steps[0] % cfg.CHECKPOINT_INTERVAL == 0:
            self.save()
        return out

    def _grow_hierarchy(self, level: int, loss: float) -> None:
        """Track level ``level``'s loss average; create the next level once it stayed good long enough.

        The rule: an exponential moving average (0.98) of the level's patch loss must stay below
        LEVEL_CREATE_THRESHOLD for LEVEL_PATIENCE consecutive updates, and fewer than MAX_LEVELS exist.
        """
        cfg = self.cfg
        ema = self.level_ema[level]
        self.level_ema[level] = ema = loss if ema is None else 0.98 * ema + 0.02 * loss
        self.level_good[level] = self.level_good[level] + 1 if ema < cfg.LEVEL_CREATE_THRESHOLD else 0
        last = level == len(self.predictors) - 1
        if last and self.level_good[level] >= cfg.LEVEL_PATIENCE and len(self.predictors) < cfg.MAX_LEVELS:
            self._add_level()
            self.pred_steps.append(0)
            self.level_ema.append(None)
            self.level_good.append(0)
            self.log(f"step {self.step_count}: level {level} is good enough, created level {level + 1}")

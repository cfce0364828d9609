"""The learner's training steps: the autoencoder alone (while gated), or predictor and autoencoder
together (the predictor's losses reach the encoder, scaled down).

Kept apart from adaptive_world_model.py so each file reads in one sitting; ``TrainingMixin`` expects
the attributes that ``AdaptiveWorldModel.__init__`` creates (codec, predictor, optimisers, buffer...).
Shape key: B batch, H history, N tokens, D latent width, S frame side.
"""

from __future__ import annotations

import torch

from .replay_buffer import rng_choice
from models import decode_prediction, explained_variance, patchify, predictor_losses


def clip_and_norm(module: torch.nn.Module, max_norm: float) -> float:
    """Clip the gradients of ``module`` to L2 norm ``max_norm``; return their norm before clipping."""
    return float(torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm))


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
        ends = self.buffer.valid_ends(cfg.PREDICTION_HISTORY_SIZE)
        # Train when the last prediction missed, or when the model was unsure of the action it chose:
        # measured, with the miss alone the learner kept choosing its most uncertain action ("stay"),
        # whose outcome it predicted perfectly, so nothing ever trained its uncertainty away.
        unsure = self.last.get("entropy_taken", 0.0) > cfg.ENTROPY_FLOOR
        wants_pred = fresh_err is None or fresh_err > cfg.PREDICTION_THRESHOLD or unsure
        codec_ready = recon <= cfg.RECONSTRUCTION_THRESHOLD
        if codec_ready and len(ends) and wants_pred:
            for _ in range(cfg.UPDATES_PER_STEP):
                out.update(self.train_predictor(ends))
        elif not codec_ready or len(ends) == 0:
            for _ in range(cfg.UPDATES_PER_STEP):
                out.update(self.train_autoencoder())
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
        gn = clip_and_norm(self.codec, self.cfg.GRAD_CLIP)
        self.ae_opt.step()
        self.ae_steps += 1
        return {
            "ae_train_loss": float(loss.detach()),
            "mask_ratio": info["mask_ratio"],
            "grad_norm/autoencoder": gn,
        }

    def train_predictor(self, ends) -> dict:
        """One joint step of predictor and autoencoder on the freshest sample plus replayed ones.

        The loss: the reconstruction loss of the newest history frame plus the triple loss, with the
        predictor's gradient reaching the encoder scaled by ENCODER_PRED_GRAD_SCALE.
        """
        cfg, h = self.cfg, self.cfg.PREDICTION_HISTORY_SIZE
        pred, opt = self.predictor, self.pred_opt
        fresh = int(ends[-1]) if ends[-1] == self.buffer.count - 1 else None
        ids = rng_choice(self.rng, list(ends), cfg.BATCH_SIZE, fresh)
        batch = self.buffer.sample(ids, h)
        f = batch["frames"].to(self.device)  # (B, H+1, 3, S, S)
        acts = self.table[batch["action_idx"]].to(self.device)  # (B, H, A)
        bsz = f.shape[0]
        # the newest history frame is encoded with gradients: predictor losses reach the encoder
        recon_loss, base, info = self.codec.reconstruction_loss(f[:, h - 1])
        if info["tokens"] is None:  # the MAE saw a masked frame: encode (and later decode) it whole
            z_last, base = self.codec.encode(f[:, h - 1]), None
        else:
            z_last = info["tokens"]
        with torch.no_grad():  # the older history frames and the target, in one batch: (B * H, N, D)
            z_rest = self.codec.encode(f[:, [*range(h - 1), h]].flatten(0, 1)).view(bsz, h, *z_last.shape[1:])
            z_old, z_tgt = z_rest[:, : h - 1], z_rest[:, h - 1]  # (B, H-1, N, D) and (B, N, D)
        # the encoder hears the predictor, scaled down: reconstruction stays in charge
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
        losses = predictor_losses(
            pf,
            f[:, h],
            z_pred,
            z_tgt,
            logits,
            batch["action_idx"][:, -1].to(self.device),
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
        out = {"grad_norm/predictor": clip_and_norm(pred, cfg.GRAD_CLIP)}
        opt.step()
        out["grad_norm/autoencoder"] = clip_and_norm(self.codec, cfg.GRAD_CLIP)
        self.ae_opt.step()
        self.ae_steps += 1
        out.update({"ae_train_loss": float(recon_loss.detach()), "mask_ratio": info["mask_ratio"]})
        self.ae_opt.zero_grad(set_to_none=True)
        if before is not None:  # update-to-weight ratio: how far one step moves the weights (~1e-3 healthy)
            num = sum((p.detach() - b).norm() ** 2 for p, b in zip(pred.parameters(), before, strict=True))
            den = sum(b.norm() ** 2 for b in before) ** 0.5
            out["update_ratio"] = float(num**0.5 / den.clamp_min(1e-12))
            out["r2_patch"] = explained_variance(patchify(pf.detach(), 8), patchify(f[:, h], 8))
        for name in ("patch", "latent", "action", "total"):
            out[f"{name}_loss"] = float(losses[name].detach())
        self.pred_steps += 1
        if self.pred_steps % cfg.CHECKPOINT_INTERVAL == 0:
            self.save()
        return out

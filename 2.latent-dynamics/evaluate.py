"""Dream and measure: every model rolls out HORIZON frames from CONTEXT true ones, and its dream is
compared with the truth and with the simple alternatives (validate.py calls ``measure``).

The baselines: the true future through the codec (``codec_floor``, the best a model in this latent space
can do), the last context frame copied (``copy_last``), each ball carried on at its last velocity
(``constant_velocity``, no walls) and a black frame (``empty_frame``, every ball erased); teacher forcing
gives the model a true context at every step (not available when dreaming).

Shape key: B videos, T frames, C context frames, H horizon, N tokens per frame (256), P values per token
(4 FSQ channels); frames are (64, 64, 3).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from data_utils import BALL_COLOURS, ball_error, locate_balls, soft_disc
from models import FSQAutoencoder, LatentDynamics, latents_to_tokens, snap_to_grid, tokens_to_latents

CONTEXT, HORIZON = 3, 20  # true frames shown, frames dreamed
MAIN = "regression_rollout"  # the model the targets are measured on


@torch.no_grad()
def decode(codec: FSQAutoencoder, tok: torch.Tensor) -> np.ndarray:
    """Tokens (B, T, N, P), continuous or codes -> frames (B, T, 64, 64, 3) float in [0, 1]."""
    b, t = tok.shape[:2]
    levels = [int(lv) for lv in codec.fsq.levels]
    zq = tokens_to_latents(snap_to_grid(tok, levels))  # (B, T, D, 16, 16) the decoder reads codes only
    frames = codec.decode(zq.flatten(0, 1)).clamp(0, 1)  # (B*T, 3, 64, 64)
    return frames.permute(0, 2, 3, 1).reshape(b, t, 64, 64, 3).cpu().numpy()


@torch.no_grad()
def rollout(model: LatentDynamics, context: torch.Tensor, steps: int, desc: str = "dream") -> torch.Tensor:
    """Open loop: context tokens (B, C, N, P) -> (B, steps, N, P), each step fed the model's own output."""
    seq = context
    for _ in tqdm(range(steps), desc=desc, leave=False):
        seq = torch.cat([seq, model.predict_next(seq)[:, None]], dim=1)
    return seq[:, context.shape[1] :]


@torch.no_grad()
def teacher_forced(model: LatentDynamics, tokens: torch.Tensor, steps: int) -> torch.Tensor:
    """One-step predictions with a *true* context of CONTEXT frames for each of ``steps`` targets."""
    preds = [
        model.predict_next(tokens[:, k : CONTEXT + k])
        for k in tqdm(range(steps), desc="teacher forced (main)", leave=False)
    ]
    return torch.stack(preds, dim=1)  # (B, steps, N, P)


def constant_velocity(videos: np.ndarray, steps: int) -> np.ndarray:
    """Pixel-space baseline: find each ball in the last two context frames, keep its velocity, redraw it.

    No bounces: it knows motion but not walls. Returns (B, steps, 64, 64, 3) float in [0, 1].
    """
    c1, f1 = locate_balls(videos[:, CONTEXT - 2])
    c2, f2 = locate_balls(videos[:, CONTEXT - 1])
    frame = videos[:, CONTEXT - 1].astype(np.float32) / 255.0
    out = np.zeros((len(videos), steps, 64, 64, 3), dtype=np.float32)
    for i in range(len(videos)):
        for c in np.flatnonzero(f1[i] & f2[i]):
            mass = (np.abs(frame[i] - BALL_COLOURS[c] / 255.0).sum(-1) < 0.3).sum()  # pixels of this ball
            radius = max(np.sqrt(mass / np.pi) - 0.2, 1.0)
            vel = c2[i, c] - c1[i, c]
            for h in range(steps):
                x, y = c2[i, c] + vel * (h + 1)
                out[i, h] = np.maximum(
                    out[i, h], soft_disc(64, x, y, radius)[..., None] * BALL_COLOURS[c] / 255.0
                )
    return out


def horizon_metrics(pred: np.ndarray, truth: np.ndarray, balls: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per horizon: mean pixel MSE and mean ball-centroid error (px; NaN without ``balls``, i.e. on your
    own video, where there is nothing to track). pred/truth (B, H, 64, 64, 3)."""
    mse = ((pred - truth) ** 2).mean(axis=(0, 2, 3, 4))
    if not balls:
        return mse, np.full(len(mse), np.nan)
    err = np.array([ball_error(pred[:, h], truth[:, h]).mean() for h in range(truth.shape[1])])
    return mse, err


def measure(codec, models: dict, videos: np.ndarray, levels, device, balls: bool) -> tuple:
    """Dream HORIZON frames with every model from CONTEXT true ones, and measure them and the baselines.

    ``balls=False`` (your own video) keeps the pixel MSE only: ball errors, constant velocity (which
    tracks balls) and the context-1 test need balls. Returns (metrics, baselines, curves {name: (mse,
    err) per horizon}, preds {name: (B, H, 64, 64, 3)}, the teacher-forced ball error per horizon)."""
    truth = videos[:, CONTEXT:].astype(np.float32) / 255.0  # (B, H, 64, 64, 3) what really happens
    with torch.no_grad():
        flat = torch.from_numpy(videos.reshape(-1, 64, 64, 3)).permute(0, 3, 1, 2).to(device).float() / 255.0
        z = torch.cat(
            [
                codec.encode_continuous(flat[i : i + 500])
                for i in tqdm(range(0, len(flat), 500), desc="encode")
            ]
        )
    tokens = latents_to_tokens(z.view(len(videos), -1, 4, 16, 16))  # (B, C+H, N, P) before rounding
    codes = snap_to_grid(tokens, levels)  # (B, C+H, N, P) the FSQ codes

    preds = {"codec_floor": decode(codec, codes[:, CONTEXT:])}  # the true future through the codec
    for name, model in models.items():  # regression reads continuous latents, classification codes
        inp = tokens if model.head_kind == "regression" else codes
        preds[name] = decode(codec, rollout(model, inp[:, :CONTEXT], HORIZON, desc=f"dream ({name})"))
    _, tf_err = horizon_metrics(decode(codec, teacher_forced(models[MAIN], tokens, HORIZON)), truth, balls)
    preds["copy_last"] = np.repeat(videos[:, CONTEXT - 1 : CONTEXT].astype(np.float32) / 255.0, HORIZON, 1)
    if balls:
        preds["constant_velocity"] = constant_velocity(videos, HORIZON)
    preds["empty_frame"] = np.zeros_like(truth)  # every ball erased
    curves = {name: horizon_metrics(pred, truth, balls) for name, pred in preds.items()}

    mse, err = curves[MAIN]
    metrics = {
        "mse_h10_over_copy_last": float(mse[9] / curves["copy_last"][0][9]),
        "mse_h10_over_empty_frame": float(mse[9] / curves["empty_frame"][0][9]),
    }
    if balls:
        # context 1 vs 3: one-step prediction of the same frame from only its predecessor, or from three
        ctx1 = decode(codec, models[MAIN].predict_next(tokens[:, CONTEXT - 1 : CONTEXT])[:, None])
        ctx1_err = ball_error(ctx1[:, 0], truth[:, 0]).mean()
        cv_err = curves["constant_velocity"][1]
        metrics |= {
            "ball_err_h5_px": float(err[4]),
            "ball_err_h5_over_constant_velocity": float(err[4] / cv_err[4]),
            "ball_err_h10_over_constant_velocity": float(err[9] / cv_err[9]),
            "ctx1_over_ctx3_ball_err_h1": float(ctx1_err / err[0]),
            "ball_err_h1_ctx1_px": float(ctx1_err),
            "ball_err_h1_ctx3_px": float(err[0]),
        }
    baselines = {}
    for name, (m_mse, m_err) in curves.items():
        for h in (1, 5, 10, 20):
            key_m, key_e = f"pixel_mse_h{h}", f"ball_err_h{h}_px"
            target = metrics if name == MAIN else baselines
            target[key_m if name == MAIN else f"{key_m}/{name}"] = float(m_mse[h - 1])
            if balls:
                target[key_e if name == MAIN else f"{key_e}/{name}"] = float(m_err[h - 1])
    for name in ("constant_velocity", "empty_frame"):
        if name in curves:
            baselines[f"mse_h10_over_copy_last/{name}"] = float(
                curves[name][0][9] / curves["copy_last"][0][9]
            )
    for h in (5, 10, 20) if balls else ():  # teacher forcing: every step gets a true context
        baselines[f"ball_err_h{h}_px/teacher_forced"] = float(tf_err[h - 1])
    return metrics, baselines, curves, preds, tf_err

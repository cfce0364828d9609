"""Scoring the learner on held-out toroidal-dot steps: the numbers validate.py and the comparisons print.

For every held-out step the predictor is asked what happens under *both* actions, and the world is
copied and stepped each way for the truth: the dot's position (224-px units), R^2 in patch space, and
whether the action classifier names the action. The attention metrics keep the seed project's
meanings, read from the predictor's last layer (heads averaged) for the queries that make the
prediction (the newest frame's tokens, the seed's "future" tokens):

- APA, attention to the previous action: the weight on the action token a_t whose effect is predicted;
- ALF, attention to the last frame: the summed weight on the newest frame's tokens z_t;
- TTAR, token-type attention ratio: summed weight on action tokens / summed weight on frame tokens;
- RI@16, recency index: the share of the weight on the 16 most recent keys of the sequence;
- entropy of the attention rows (nats).

Shape key: M held-out steps, H history, S frame side, L sequence length, Hd heads, N tokens per frame.
"""

from __future__ import annotations

import numpy as np
import torch
from robots import ToroidalDotConfig, ToroidalDotEnvironment

from .utils import dot_position, preprocess_frame, ring_error
from models import decode_prediction, explained_variance, patchify

HELDOUT_SEED_OFFSET = 10_000  # held-out worlds use seed + this (>= 10,000); training uses the seed itself


def rollout_dataset(seed: int, episodes: int, episode_len: int, size: int, history: int) -> dict:
    """Held-out episodes with random actions; at each step the truth under both actions.

    Returns hist (M, H, 3, S, S), past (M, H-1) action indices, next (M, 2, 3, S, S) true next frames
    under action 0 and 1, pos (M, 2, 2) true next (x, y) under each action.
    """
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=seed + HELDOUT_SEED_OFFSET))
    rng = np.random.default_rng(seed + HELDOUT_SEED_OFFSET)
    out = {"hist": [], "past": [], "next": [], "pos": []}
    for _ in range(episodes):
        frames, acts = [preprocess_frame(env.reset()[0], size)], []
        for _ in range(episode_len):
            if len(frames) >= history:
                x0, nxt, pos = env.x, [], []
                for a in (0, 1):  # copy the world: step it each way, then put the dot back
                    nxt.append(preprocess_frame(env.step(a)[0], size))
                    pos.append(env.position)
                    env.x = x0
                out["hist"].append(torch.stack(frames[-history:]))
                out["past"].append(torch.tensor(acts[-(history - 1) :]))
                out["next"].append(torch.stack(nxt))
                out["pos"].append(torch.tensor(pos, dtype=torch.float32))
            a = int(rng.integers(2))
            frames.append(preprocess_frame(env.step(a)[0], size))
            acts.append(a)
    return {k: torch.stack(v) for k, v in out.items()}


def attention_metrics(attns: list[torch.Tensor], n_merged: int, history: int) -> dict:
    """The seed's attention metrics (module docstring), one value per sample.

    attns: per-layer weights (B, Hd, L, L) with L = history * (n_merged + 1), laid out as
    [z_0 (n_merged tokens) | a_0 | z_1 | a_1 | ... | z_t | a_t]. Returns {name: (B,)}.
    """
    seq = history * (n_merged + 1)
    rows = attns[-1].mean(dim=1)[:, seq - (n_merged + 1) : seq - 1]  # (B, q, L): newest frame's queries
    act_keys = torch.arange(history) * (n_merged + 1) + n_merged  # positions of a_0 ... a_t
    is_action = torch.zeros(seq, dtype=torch.bool)
    is_action[act_keys] = True
    frame_mass = rows[..., ~is_action].sum(-1)  # (B, q)
    per_query = {
        "APA": rows[..., seq - 1],
        "ALF": rows[..., seq - (n_merged + 1) : seq - 1].sum(-1),
        "TTAR": rows[..., is_action].sum(-1) / frame_mass.clamp_min(1e-8),
        "RI@16": rows[..., -16:].sum(-1) / rows.sum(-1),
        "entropy": -(rows * rows.clamp_min(1e-12).log()).sum(-1),
    }
    return {k: v.mean(dim=1) for k, v in per_query.items()}


def uniform_attention_metrics(n_merged: int, history: int) -> dict:
    """The same metrics under uniform attention over all L visible keys: what "no preference" reads."""
    seq = history * (n_merged + 1)
    return {
        "APA": 1 / seq,
        "ALF": n_merged / seq,
        "TTAR": history / (seq - history),
        "RI@16": min(16, seq) / seq,
        "entropy": float(np.log(seq)),
    }


@torch.no_grad()
def evaluate(codec, pred, table, data: dict, device, batch: int = 64) -> tuple[dict, dict, torch.Tensor]:
    """Metrics, baselines and attention over the held-out steps; also the predictions (M, 2, 3, S, S)."""
    preds, hits, attn = [], [], []
    for i in range(0, len(data["hist"]), batch):
        hist = data["hist"][i : i + batch].to(device)  # (b, H, 3, S, S)
        b, h = hist.shape[:2]
        z = codec.encode(hist.flatten(0, 1)).view(b, h, -1, codec.latent_dim)
        per_action = []
        for a in (0, 1):
            idx = torch.cat([data["past"][i : i + batch], torch.full((b, 1), a)], dim=1)  # (b, H)
            z_next, attns = pred(z, table[idx].to(device), return_attn=True)
            attn.append(attention_metrics([x.cpu() for x in attns], pred.n_merged, pred.history))
            pf = decode_prediction(codec, z_next, z[:, -1], hist[:, -1]).clamp(0, 1)
            per_action.append(pf.cpu())
            hits.append(pred.classifier(pf - hist[:, -1]).cpu().argmax(dim=1) == a)
        preds.append(torch.stack(per_action, dim=1))
    preds = torch.cat(preds)  # (M, 2, 3, S, S)
    m = len(preds)
    true_pos = data["pos"].reshape(m * 2, 2)

    def pos_err(frames):
        """Dot distance (M, 2) of frames (M, 2, 3, S, S) from the truth, in 224-px units."""
        return ring_error(dot_position(frames.flatten(0, 1)), true_pos).view(m, 2)

    def r2(x):
        """R^2 of frames x (M, 2, 3, S, S) against the true next frames, in 8x8 patch space."""
        return explained_variance(patchify(x.flatten(0, 1), 8), patchify(data["next"].flatten(0, 1), 8))

    err = pos_err(preds)
    last = data["hist"][:, -1:].expand(-1, 2, -1, -1, -1)  # copy-last-frame baseline
    err_copy = pos_err(last)
    codec_only = torch.cat(
        [
            codec.decode(codec.encode(c.to(device))).clamp(0, 1).cpu()
            for c in data["next"].flatten(0, 1).split(batch)
        ]
    )
    wrong = preds.flip(1)  # the prediction for the *other* action: does the action matter?
    err_wrong = pos_err(wrong)
    metrics = {
        "pos_within_2px/both_actions": float((err <= 2).all(dim=1).float().mean()),
        "pos_within_2px/action_0": float((err[:, 0] <= 2).float().mean()),
        "pos_within_2px/action_1": float((err[:, 1] <= 2).float().mean()),
        "pos_err_px/median": float(err.median()),
        "r2_patch": r2(preds),
        "action_acc": float(torch.cat(hits).float().mean()),
        "codec_pos_err_px/median": float(pos_err(codec_only.view_as(preds)).median()),
    }
    baselines = {
        "pos_within_2px/both_actions/copy_last": float((err_copy <= 2).all(dim=1).float().mean()),
        "pos_within_2px/both_actions/other_action": float((err_wrong <= 2).all(dim=1).float().mean()),
        "pos_within_2px/action_0/copy_last": float((err_copy[:, 0] <= 2).float().mean()),
        "pos_within_2px/action_1/copy_last": float((err_copy[:, 1] <= 2).float().mean()),
        "pos_err_px/median/copy_last": float(err_copy.median()),
        "r2_patch/copy_last": r2(last),
        "r2_patch/other_action": r2(wrong),
        "action_acc/chance": 0.5,
        "codec_pos_err_px/median/true_frame": float(pos_err(data["next"]).median()),
    }
    uniform = uniform_attention_metrics(pred.n_merged, pred.history)
    for k in attn[0]:
        metrics[f"attention/{k}"] = float(torch.cat([a[k] for a in attn]).mean())
        baselines[f"attention/{k}/uniform"] = uniform[k]
    return metrics, baselines, preds

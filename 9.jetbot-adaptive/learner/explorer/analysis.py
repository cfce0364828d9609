"""The numerical half of session_explorer.py: recorded steps as tensors, predictions, attention
metrics and gradient flow. The attention metrics are the seed's (APA = attention to the previous
action, ALF = attention to the last frame, TTAR = token-type attention ratio, RI@16 = recency index,
entropy), defined once in learner/evaluation.py and shared with validate.py.

Shape key: M recorded steps, H history, S frame side, L sequence length, Hd heads.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from learner.evaluation import attention_metrics as seed_attention_metrics
from learner.utils import action_index, preprocess_frame

from models import decode_prediction, predictor_losses


def session_samples(reader, space: list[dict], size: int, history: int) -> dict:
    """Every run of ``history`` consecutive recorded steps with the frame that followed.

    Returns hist (M, H, 3, S, S), action_idx (M, H) int64 and next (M, 3, S, S).
    """
    recs = [r for r in reader.actions if r.get("observation") is not None]
    frames = {}

    def frame(i):
        """Observation i, resized and cached."""
        if i not in frames:
            frames[i] = preprocess_frame(reader.observation(i), size)
        return frames[i]

    out = {"hist": [], "action_idx": [], "next": []}
    for j in range(history - 1, len(recs)):
        window = recs[j - history + 1 : j + 1]
        obs = [r["observation"] for r in window]
        if obs != list(range(obs[0], obs[0] + history)) or obs[-1] + 1 >= reader.num_observations:
            continue
        out["hist"].append(torch.stack([frame(o) for o in obs]))
        out["action_idx"].append(torch.tensor([action_index(r["action"], space) for r in window]))
        out["next"].append(frame(obs[-1] + 1))
    if not out["hist"]:
        return {"hist": torch.zeros(0), "action_idx": torch.zeros(0), "next": torch.zeros(0)}
    return {k: torch.stack(v) for k, v in out.items()}


def predict_batch(codec, pred, table, hist, action_idx) -> torch.Tensor:
    """Predicted next frames (M, 3, S, S) for histories (M, H, 3, S, S) and action indices (M, H)."""
    with torch.no_grad():
        b, h = hist.shape[:2]
        z = codec.encode(hist.flatten(0, 1)).view(b, h, -1, codec.latent_dim)
        z_next = pred(z, table[action_idx].reshape(b, h, -1))
        return decode_prediction(codec, z_next, z[:, -1], hist[:, -1]).clamp(0, 1)


def attention_metrics(codec, pred, table, data: dict, i: int) -> tuple[dict, np.ndarray]:
    """The seed's five attention metrics for recorded step ``i`` and a heatmap image (one row per layer,
    one tile per history frame: where the newest frame's tokens look)."""
    hist, idx = data["hist"][i : i + 1], data["action_idx"][i : i + 1]
    with torch.no_grad():
        z = codec.encode(hist[0]).unsqueeze(0)  # (1, H, N, D)
        _, attns = pred(z, table[idx].reshape(1, hist.shape[1], -1), return_attn=True)
    a = torch.stack(attns)[:, 0]  # (layers, Hd, L, L)
    m, h, seq = pred.n_merged, pred.history, pred.seq_len
    queries = torch.arange(seq - (m + 1), seq - 1)  # the newest frame's tokens
    rows = a[:, :, queries]  # (layers, Hd, q, L)
    metrics = {k: float(v[0]) for k, v in seed_attention_metrics(attns, m, h).items()}
    g = int(round(m**0.5))
    mean = rows.mean(dim=(1, 2))  # (layers, L)
    tiles = []
    for layer in mean:
        row = []
        for t in range(h):
            grid = layer[t * (m + 1) : t * (m + 1) + m].reshape(g, g).numpy()
            img = cv2.resize(
                (grid / max(float(layer.max()), 1e-8) * 255).astype(np.uint8),
                (96, 96),
                interpolation=cv2.INTER_NEAREST,
            )
            row.append(
                np.pad(cv2.applyColorMap(img, cv2.COLORMAP_VIRIDIS)[..., ::-1], ((2, 2), (2, 2), (0, 0)))
            )
        tiles.append(np.concatenate(row, axis=1))
    return metrics, np.concatenate(tiles, axis=0)


def gradient_flow(codec, pred, table, data: dict, n: int = 16) -> dict:
    """Gradient norms reaching the action pathway (embedding, action tokens, FiLM) and the rest, for
    one batch of recorded steps under the triple loss. A dead action pathway shows up as ~0 here."""
    hist, idx, nxt = data["hist"][:n], data["action_idx"][:n], data["next"][:n]
    pred.zero_grad()
    b, h = hist.shape[:2]
    with torch.no_grad():
        z = codec.encode(hist.flatten(0, 1)).view(b, h, -1, codec.latent_dim)
        z_tgt = codec.encode(nxt)
    z_pred = pred(z, table[idx].reshape(b, h, -1))
    pf = decode_prediction(codec, z_pred, z[:, -1], hist[:, -1])
    losses = predictor_losses(pf, nxt, z_pred, z_tgt, pred.classifier(pf - hist[:, -1]), idx[:, -1])
    losses["total"].backward()
    groups = {"action_embed": [], "act_proj": [], "films": [], "classifier": [], "transformer + rest": []}
    for name, p in pred.named_parameters():
        key = next((g for g in groups if name.startswith(g)), "transformer + rest")
        if p.grad is not None:
            groups[key].append(p.grad.norm() ** 2)
    out = {f"grad norm: {k}": float(torch.stack(v).sum().sqrt()) if v else 0.0 for k, v in groups.items()}
    codec.zero_grad()
    pred.zero_grad()
    return out

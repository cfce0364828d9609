"""The training stages of chapter 4, one function each, shared by train.py and the tests.

Shape key: N trajectories, T frames per trajectory, B batch, K latent-action codes, A action dims.
Frames are kept as uint8 tensors (N, T, 3, 64, 64) and turned into floats in [0, 1] batch by batch.

    over_pairs       the one loop over every frame pair (labelling, codes, evaluation)
    train_idm        (frame_t, frame_t+1) -> action on the labelled trajectories only
    mirror           the point mass's free data: a pair flipped left-right / up-down, its push with it
    pseudo_label     the IDM labels every pair of every trajectory (the VPT recipe)
    train_overlay    one frame -> the button lit on its controller overlay (labelled trajectories only)
    train_lam        the latent action model on all pairs, no labels
    lam_codes        the LAM's code for every pair; map_codes: code -> action by majority vote
    name_codes       code -> push (dx, dy): the mean push of its labelled pairs (the point mass)
    train_state_dynamics  the pay-off's dynamics model of the robot's state, on whichever labels it is given
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models import InverseDynamics, LatentActionModel, OverlayReader, StateDynamics, perplexity, weighted_mse


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (..., 64, 64, 3) numpy -> uint8 tensor (..., 3, 64, 64) (channels first)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3)


def roll(xs: list[torch.Tensor], rng: np.random.Generator) -> list[torch.Tensor]:
    """Shift every sample by a random (dx, dy) on the torus, the same shift for each tensor of ``xs``.

    The dot's world has no edges and no landmarks, so a shifted pair is another valid pair with the same
    action: free data. xs: tensors (B, C, 64, 64) -> the same, shifted.
    """
    shifts = rng.integers(0, 64, (xs[0].shape[0], 2)).tolist()  # (B, 2) (dy, dx) in pixels
    return [torch.stack([torch.roll(x[i], s, dims=(1, 2)) for i, s in enumerate(shifts)]) for x in xs]


def mirror(x0, x1, push, rng: np.random.Generator) -> tuple:
    """Flip each point-mass pair left-right and up-down, each with probability 1/2, and its push with it.

    Valid because the room is mirror-symmetric (outer walls, the dividing wall and its door all sit
    symmetrically about the middle) and a flip keeps the simulator's rule (full move, else slide along x,
    else along y): flipping both frames and negating dx (or dy) gives a pair the simulator could have
    produced, wall blocks included (tests/test_models.py checks both).
    (In a room that is not symmetric, a flipped pair could show the disk stopped where no wall stands,
    and the IDM would learn a wrong push there.) The torus shift of ``roll`` does not apply: walls have
    places. x0, x1: (B, 3, 64, 64); push: (B, 2) (dx, dy) -> the same, flipped where drawn.
    """
    push = push.clone()
    for axis, dim in ((0, -1), (1, -2)):  # dx <-> the width (left-right), dy <-> the height (up-down)
        flip = torch.from_numpy(rng.random(len(push)) < 0.5).to(push.device)  # (B,)
        x0, x1 = (torch.where(flip[:, None, None, None], x.flip(dim), x) for x in (x0, x1))
        push[flip, axis] = -push[flip, axis]
    return x0, x1, push


def batch_pairs(frames: torch.Tensor, traj: np.ndarray, t: np.ndarray, device) -> tuple:
    """Frames (N, T, 3, 64, 64) uint8 and indices (B,), (B,) -> frame_t, frame_t+1 (B, 3, 64, 64) floats."""
    x0 = frames[traj, t].to(device).float() / 255.0
    x1 = frames[traj, t + 1].to(device).float() / 255.0
    return x0, x1


def cosine_lr(step: int, total: int, peak: float, warmup: int = 20) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))


def fit(model, batch_loss, steps: int, lr: float, desc: str, extra=None) -> dict:
    """The shared loop: AdamW with warm-up + cosine, gradient clipping, a tqdm bar, a loss history.

    Args:
        batch_loss: step -> (loss tensor, dict of numbers to log); draws its own batch.
        extra: optional names of logged numbers to keep in the history beside the loss.
    Returns: {"step": [...], "loss": [...], <extra>: [...], "seconds": s}.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    hist, t0 = {"step": [], "loss": [], **{k: [] for k in extra or ()}}, time.time()
    model.train()
    for step in (bar := tqdm(range(steps), desc=desc)):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr)
        loss, logs = batch_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            for k in extra or ():
                hist[k].append(logs[k])
            ms = (time.time() - t0) / (step + 1) * 1000
            bar.set_postfix(loss=f"{loss.item():.4f}", ms=f"{ms:.0f}", **{k: f"{logs[k]:.2f}" for k in logs})
    hist["seconds"] = time.time() - t0
    return hist


def train_idm(kind, frames, actions, labelled, cfg, device) -> tuple[InverseDynamics, dict]:
    """Train an inverse dynamics model on the labelled trajectories only.

    Args:
        kind: "discrete" (the dot: cross-entropy) or "continuous" (the point mass: MSE).
        frames: (N, T, 3, 64, 64) uint8. actions: (N, T-1) int64 or (N, T-1, 2) float.
        labelled: indices of the trajectories whose labels may be used.
        cfg: needs idm_steps, batch_size, lr, seed. Free data: the torus shift for the dot, the mirror
            flips for the point mass (both keep the pair a possible one; see roll and mirror).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    model = InverseDynamics(kind).to(device)
    acts = torch.as_tensor(actions)

    def batch_loss(step):
        traj = labelled[rng.integers(0, len(labelled), cfg.batch_size)]
        t = rng.integers(0, frames.shape[1] - 1, cfg.batch_size)
        x0, x1 = batch_pairs(frames, traj, t, device)
        y = acts[traj, t].to(device)
        if kind == "discrete":
            x0, x1 = roll([x0, x1], rng)
        else:
            x0, x1, y = mirror(x0, x1, y, rng)
        out = model(x0, x1)
        if kind == "discrete":
            return F.cross_entropy(out, y), {"acc": (out.argmax(-1) == y).float().mean().item()}
        return (out - y).pow(2).mean(), {"mae": (out - y).abs().mean().item()}

    hist = fit(
        model, batch_loss, cfg.idm_steps, cfg.lr, f"IDM {kind} ({len(labelled)} labelled trajectories)"
    )
    return model.eval(), hist


@torch.no_grad()
def over_pairs(fn, frames: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    """The one loop over frame pairs: ``fn(x0, x1)`` on every (trajectory, t) pair, in batches.

    Args: fn maps two (b, 3, 64, 64) float batches to (b, ...); frames (N, T, 3, 64, 64) uint8.
    Returns: (N*(T-1), ...) results in (trajectory, t) order, on the CPU.
    """
    n, t = frames.shape[:2]
    traj, step = np.divmod(np.arange(n * (t - 1)), t - 1)  # every (trajectory, t) pair
    return torch.cat(
        [
            fn(*batch_pairs(frames, traj[i : i + batch], step[i : i + batch], device)).cpu()
            for i in range(0, len(traj), batch)
        ]
    )


@torch.no_grad()
def pseudo_label(idm: InverseDynamics, frames: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    """Label every pair of every trajectory: frames (N, T, 3, 64, 64) -> (N, T-1) int64 or (N, T-1, A).

    Deterministic: the model is in eval mode and the same frames give the same labels (tests check it).
    """
    n, t = frames.shape[:2]
    out = over_pairs(idm.eval().predict, frames, device, batch)  # (N*(T-1)[, A])
    return out.view(n, t - 1, *out.shape[1:])


def train_overlay(frames, shown, labelled, cfg, device) -> tuple[OverlayReader, dict]:
    """Train the overlay reader on single frames of the labelled trajectories.

    Args:
        frames: (N, T, 3, 64, 64) uint8 frames with the overlay. shown: (N, T) int64 button lit per frame.
        cfg: needs overlay_steps, batch_size, lr, seed. No shift augmentation: the overlay has a place.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 2)
    model = OverlayReader().to(device)

    def batch_loss(step):
        traj = labelled[rng.integers(0, len(labelled), cfg.batch_size)]
        t = rng.integers(0, frames.shape[1], cfg.batch_size)
        x, y = frames[traj, t].to(device).float() / 255.0, shown[traj, t].to(device)
        out = model(x)
        return F.cross_entropy(out, y), {"acc": (out.argmax(-1) == y).float().mean().item()}

    hist = fit(model, batch_loss, cfg.overlay_steps, cfg.lr, f"overlay reader ({len(labelled)} trajectories)")
    return model.eval(), hist


@torch.no_grad()
def read_overlay(reader: OverlayReader, frames: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    """The button read off each frame: frames (N, T, 3, 64, 64) uint8 -> (N, T) int64."""
    flat = frames.flatten(0, 1)
    out = [
        reader.eval()(flat[i : i + batch].to(device).float() / 255.0).argmax(-1).cpu()
        for i in range(0, len(flat), batch)
    ]
    return torch.cat(out).view(frames.shape[:2])


def train_lam(
    frames, cfg, device, quantizer="fsq", fg_weight=None, spread=True, shift=True
) -> tuple[LatentActionModel, dict]:
    """Train the latent action model on every pair of every trajectory, without any label.

    Loss: the decoder's foreground-weighted MSE on frame_t+1 (weight ``fg_weight``, cfg.fg_weight by
    default; 1 = plain MSE) plus the VQ codebook/commitment loss. ``spread``: batch-normalise the latent
    before quantising (the remedy against collapse, see lam.py). ``shift``: the torus shift augmentation
    (the dot; the point-mass room has walls in fixed places). The history keeps the batch's code
    perplexity: the collapse monitor (1 = every pair gets the same code). Trains cfg.lam_steps steps.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 3)
    w = cfg.fg_weight if fg_weight is None else fg_weight
    model = LatentActionModel(quantizer, spread=spread).to(device)
    bs = cfg.lam_batch
    n, t = frames.shape[:2]

    def batch_loss(step):
        x0, x1 = batch_pairs(frames, rng.integers(0, n, bs), rng.integers(0, t - 1, bs), device)
        if shift:
            x0, x1 = roll([x0, x1], rng)
        out = model(x0, x1)
        loss = weighted_mse(out["pred"], x1, w) + out["quant_loss"]
        return loss, {"perplexity": perplexity(out["index"], model.n_codes)}

    name = f"LAM {quantizer}, fg weight {w:g}, spread {spread}"
    hist = fit(model, batch_loss, cfg.lam_steps, cfg.lr, name, extra=("perplexity",))
    return model.eval(), hist


@torch.no_grad()
def lam_codes(lam: LatentActionModel, frames: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    """The LAM's code index for every pair: frames (N, T, 3, 64, 64) -> (N, T-1) int64 in [0, K)."""
    n, t = frames.shape[:2]
    lam.eval()
    return over_pairs(lambda x0, x1: lam.encode(x0, x1)[1], frames, device, batch).view(n, t - 1)


def map_codes(codes: torch.Tensor, actions: torch.Tensor, n_codes: int, n_actions: int = 5) -> torch.Tensor:
    """Name the latent actions from a few labelled pairs: each code gets the true action it most often
    co-occurs with; a code never seen among the labelled pairs gets the most common action overall.

    Args: codes, actions: (M,) int64 for the M labelled pairs. Returns: (K,) int64 code -> action.
    """
    counts = torch.zeros(n_codes, n_actions)
    counts.index_put_((codes, actions), torch.ones(len(codes)), accumulate=True)  # (K, 5) co-occurrences
    mapping = counts.argmax(1)
    fallback = torch.bincount(actions, minlength=n_actions).argmax()
    return torch.where(counts.sum(1) > 0, mapping, fallback)


def name_codes(codes: torch.Tensor, actions: torch.Tensor, n_codes: int) -> torch.Tensor:
    """Name latent actions with continuous pushes: each code gets the mean push of its labelled pairs; a
    code none of them used gets the mean of all of them.

    Args: codes (M,) int64 and actions (M, A) float for the M labelled pairs. Returns: (K, A) names.
    """
    sums = torch.zeros(n_codes, actions.shape[1]).index_add_(0, codes, actions.float())  # (K, A)
    counts = torch.bincount(codes, minlength=n_codes)[:, None]  # (K, 1)
    return torch.where(counts > 0, sums / counts.clamp(min=1), actions.float().mean(0))


def snap(actions: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
    """Each push (..., A) -> the nearest of the K named latent actions (K, A): all a latent-action world
    model can be told, since it only ever saw those K conditions."""
    dist = (actions[..., None, :] - names).pow(2).sum(-1)  # (..., K)
    return names[dist.argmin(-1)]


def train_state_dynamics(positions, actions, trajs, cfg, device, name: str) -> tuple[StateDynamics, dict]:
    """Train the pay-off's dynamics model: (position_t, action_t) -> position_t+1, on *given* labels.

    Args:
        positions: (N, T, 2) float px, the robot's proprioception. actions: (N, T-1, A) float, true or
            inferred: this is what differs between the pay-off's models (A = 0: no action at all).
        trajs: the trajectories it may learn from (every one, or only the labelled few).
        cfg: needs dyn_steps, dyn_batch, lr, seed. The seed, data and steps are the same for every source.
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 4)
    pos = torch.as_tensor(positions)[trajs]  # (n, T, 2)
    x0, x1 = pos[:, :-1].reshape(-1, 2).to(device), pos[:, 1:].reshape(-1, 2).to(device)  # (n*(T-1), 2)
    acts = torch.as_tensor(actions)[trajs].reshape(len(x0), -1).float().to(device)  # (n*(T-1), A)
    model = StateDynamics(acts.shape[1]).to(device)

    def batch_loss(step):
        i = torch.randint(0, len(x0), (cfg.dyn_batch,), generator=gen).to(device)
        err = model(x0[i], acts[i]) - x1[i]  # (B, 2) px
        return err.pow(2).sum(1).mean(), {}

    hist = fit(model, batch_loss, cfg.dyn_steps, cfg.lr, f"dynamics on {name} ({len(x0)} pairs)")
    return model.eval(), hist

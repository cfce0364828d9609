"""The action-conditioned predictor: what will the next latent be, given the last frames and an action?

    frames z_{t-2}, z_{t-1}, z_t (N tokens each)  +  actions a_{t-2}, a_{t-1}, a_t
      -> interleave [z_{t-2} | a_{t-2} | z_{t-1} | a_{t-1} | z_t | a_t]   (block-causal transformer)
      -> FiLM: in blocks 0 and 2 every token of step t is scaled and shifted by gamma(a_t), beta(a_t)
      -> delta head on the tokens of z_t:   z_{t+1} = z_t + delta       (predict the change)
      -> decode z_{t+1}; an action classifier must name a_t from decode(z_{t+1}) - frame_t

Shape key: B batch, H history (3), N tokens per frame, D latent width, E model width, A action
components, K number of (chunked) actions, S frame side. The attention is written out in attention.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .attention import MAX_TOKENS, EncoderLayer
from .codec_common import relative_weighted_mse

LOSS_WEIGHTS = {"patch": 0.2, "latent": 0.8, "action": 1.0}


class ActionEmbedding(nn.Module):
    """Raw actions (B, A) in their physical ranges -> normalised to [-1, 1] -> MLP -> (B, action_dim)."""

    def __init__(self, ranges: list[tuple[float, float]], embed_dim: int = 64):
        """ranges: (low, high) of each of the A action components (ACTION_RANGES); embed_dim: output width."""
        super().__init__()
        self.register_buffer("low", torch.tensor([r[0] for r in ranges], dtype=torch.float32))
        self.register_buffer("high", torch.tensor([r[1] for r in ranges], dtype=torch.float32))
        self.net = nn.Sequential(
            nn.Linear(len(ranges), embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )

    def normalise(self, a: torch.Tensor) -> torch.Tensor:
        """(…, A) in [low, high] -> (…, A) in [-1, 1]; a constant component maps to 0."""
        span = (self.high - self.low).clamp_min(1e-8)
        return 2 * (a - self.low) / span - 1

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: (…, A) -> (…, embed_dim)."""
        if a.shape[-1] != self.low.numel():
            raise ValueError(
                f"expected actions with {self.low.numel()} components (…, A), got {tuple(a.shape)}"
            )
        return self.net(self.normalise(a))


class FiLM(nn.Module):
    """Feature-wise linear modulation: x * (1 + gamma(e)) + beta(e), gamma and beta from an MLP."""

    def __init__(self, embed_dim: int, hidden: int, dim: int):
        """embed_dim: action embedding width; hidden: FILM_HIDDEN_DIM; dim: E, the features modulated."""
        super().__init__()
        self.net = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * dim))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x: (B, L, E) features; e: (B, L, embed) the action embedding of each token's step."""
        gamma, beta = self.net(e).chunk(2, dim=-1)  # each (B, L, E)
        return x * (1 + gamma) + beta


class ActionClassifier(nn.Module):
    """Which action was taken? Reads the pixel difference decode(z_pred) - frame_t (B, 3, S, S) -> (B, K)."""

    def __init__(self, n_classes: int, ch: int = 16):
        """n_classes: K; ch: width of the first convolution."""
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * ch, 2 * ch, 3, padding=1),
        )
        self.head = nn.Linear(4 * ch, n_classes)

    def forward(self, diff: torch.Tensor) -> torch.Tensor:
        """diff: (B, 3, S, S) -> logits (B, K); max- and mean-pooled so a tiny moving object counts."""
        h = self.net(diff)  # (B, 2ch, S/4, S/4)
        return self.head(torch.cat([h.amax(dim=(2, 3)), h.mean(dim=(2, 3))], dim=1))


class TransformerActionConditionedPredictor(nn.Module):
    """Block-causal transformer over interleaved frame and action tokens; predicts the next latent."""

    def __init__(
        self,
        n_tokens: int,
        latent_dim: int,
        action_ranges: list[tuple[float, float]],
        n_classes: int,
        history: int = 3,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        film_block_ids: tuple[int, ...] = (0, 2),
        action_embed_dim: int = 64,
        film_hidden_dim: int = 128,
        merge: int = 2,
        conditioning: str = "film",
    ):
        """n_tokens: N; latent_dim: D; action_ranges: (low, high) per action component; n_classes: K;
        history: H frames seen; dim/depth/heads: transformer size; film_block_ids: blocks followed by
        FiLM; action_embed_dim / film_hidden_dim: widths of the action MLP and the FiLM MLP; merge: side
        of the square of codec tokens merged into one predictor token (2: 4 tokens -> 1, as in Swin),
        because attention cost grows with the square of the sequence length (measured: 195 tokens cost
        0.5 s per batch of 16 on one core, 51 tokens a fraction of that); conditioning: "film" (FiLM
        after the blocks in film_block_ids) or "concat" (the action embedding appended to every frame
        token's input features, no FiLM)."""
        super().__init__()
        if conditioning not in ("film", "concat"):
            raise ValueError(f"conditioning must be 'film' or 'concat', got {conditioning!r}")
        self.concat = conditioning == "concat"
        grid = int(round(n_tokens**0.5))
        if grid * grid != n_tokens or grid % merge:
            raise ValueError(f"n_tokens must be a square grid divisible by merge={merge}, got {n_tokens}")
        self.n_tokens, self.latent_dim, self.history, self.merge, self.grid = (
            n_tokens,
            latent_dim,
            history,
            merge,
            grid,
        )
        self.n_merged = n_tokens // merge**2  # M, predictor tokens per frame
        self.seq_len = history * (self.n_merged + 1)
        if self.seq_len > MAX_TOKENS:
            raise ValueError(f"{history} frames of {n_tokens} tokens exceed the {MAX_TOKENS}-token cap")
        self.film_block_ids = () if self.concat else tuple(film_block_ids)
        self.action_embed = ActionEmbedding(action_ranges, action_embed_dim)
        self.in_proj = nn.Linear(latent_dim * merge**2 + (action_embed_dim if self.concat else 0), dim)
        self.act_proj = nn.Linear(action_embed_dim, dim)
        self.space_pos = nn.Parameter(torch.randn(self.n_merged, dim) * 0.02)  # (M, E)
        self.time_pos = nn.Parameter(torch.randn(history, dim) * 0.02)  # (H, E)
        self.blocks = nn.ModuleList(EncoderLayer(dim, heads) for _ in range(depth))
        self.films = nn.ModuleDict(
            {str(i): FiLM(action_embed_dim, film_hidden_dim, dim) for i in self.film_block_ids}
        )
        self.norm = nn.LayerNorm(dim)
        self.delta_head = nn.Linear(dim, latent_dim * merge**2)
        nn.init.zeros_(self.delta_head.weight)  # start as "nothing changes" (copy the last latent)
        nn.init.zeros_(self.delta_head.bias)
        self.classifier = ActionClassifier(n_classes)
        step = torch.arange(history).repeat_interleave(self.n_merged + 1)  # (L,) which step each token is in
        self.register_buffer("step_of_token", step, persistent=False)
        self.register_buffer("mask", step[None, :] <= step[:, None], persistent=False)  # (L, L)

    def _merge(self, z: torch.Tensor) -> torch.Tensor:
        """(B, H, N, D) -> (B, H, M, m*m*D): each m x m square of neighbouring tokens becomes one."""
        b, h, _, d = z.shape
        g, m = self.grid, self.merge
        z = z.reshape(b, h, g // m, m, g // m, m, d).permute(0, 1, 2, 4, 3, 5, 6)
        return z.reshape(b, h, self.n_merged, m * m * d)

    def _unmerge(self, y: torch.Tensor) -> torch.Tensor:
        """(B, M, m*m*D) -> (B, N, D), the inverse of ``_merge`` for one frame."""
        b, g, m, d = y.shape[0], self.grid, self.merge, self.latent_dim
        y = y.reshape(b, g // m, g // m, m, m, d).permute(0, 1, 3, 2, 4, 5)
        return y.reshape(b, self.n_tokens, d)

    def forward(self, z_hist: torch.Tensor, actions: torch.Tensor, return_attn: bool = False):
        """z_hist: (B, H, N, D) latents of the last H frames, oldest first; actions: (B, H, A) raw,
        actions[:, t] taken after frame t (the last one is the action whose effect is predicted).

        Returns z_next (B, N, D), and with ``return_attn`` also a list of per-layer weights (B, Hd, L, L).
        """
        b, h, n, d = z_hist.shape
        if (h, n, d) != (self.history, self.n_tokens, self.latent_dim) or actions.shape[:2] != (b, h):
            raise ValueError(
                f"expected z_hist (B, {self.history}, {self.n_tokens}, {self.latent_dim}) and actions "
                f"(B, {self.history}, A); got {tuple(z_hist.shape)} and {tuple(actions.shape)}"
            )
        emb = self.action_embed(actions)  # (B, H, embed)
        merged = self._merge(z_hist)  # (B, H, M, m*m*D)
        if self.concat:  # every frame token also carries its step's action embedding, at the input
            merged = torch.cat([merged, emb[:, :, None].expand(-1, -1, self.n_merged, -1)], dim=-1)
        frames = self.in_proj(merged) + self.space_pos + self.time_pos[None, :, None]  # (B, H, M, E)
        acts = self.act_proj(emb) + self.time_pos  # (B, H, E)
        x = torch.cat([frames, acts[:, :, None]], dim=2).reshape(b, self.seq_len, -1)  # (B, L, E)
        e_tok = emb[:, self.step_of_token]  # (B, L, embed): each token's own step's action
        attns = []
        for i, block in enumerate(self.blocks):
            x, attn = block(x, self.mask, return_attn)
            attns.append(attn)
            if str(i) in self.films:
                x = self.films[str(i)](x, e_tok)
        last = x[:, -(self.n_merged + 1) : -1]  # (B, M, E): the tokens of the newest frame
        delta = self._unmerge(self.delta_head(self.norm(last)))  # (B, N, D)
        z_next = z_hist[:, -1] + delta  # delta-latent prediction: predict the change, add it back
        return (z_next, attns) if return_attn else z_next


def decode_prediction(
    codec: nn.Module,
    z_pred: torch.Tensor,
    z_last: torch.Tensor,
    last_frame: torch.Tensor,
    frozen: bool = False,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """The predicted next frame: the last frame plus the *decoded change*, last + D(z_pred) - D(z_last).

    codec: has ``decode``; z_pred, z_last (B, N, D); last_frame (B, 3, S, S). Returns (B, 3, S, S).
    Why: delta latents carried all the way to pixels. With no change predicted the prediction *is* the
    last frame (copy-last is where the model starts, not a bar it must first climb over), and what the
    codec draws imperfectly at the old place cancels out instead of smearing every prediction.
    frozen: gradients reach z_pred but not the decoder's weights (the decoder learns from reconstruction).
    base: D(z_last) when the caller already has it (B, 3, S, S); it is used without gradient.
    """
    if base is None:
        with torch.no_grad():
            base = codec.decode(z_last)  # (B, 3, S, S): where the codec thinks things are now
    return last_frame + codec.decode(z_pred, frozen=frozen) - base.detach()


def predictor_losses(
    pred_frame: torch.Tensor,
    target_frame: torch.Tensor,
    z_pred: torch.Tensor,
    z_target: torch.Tensor,
    logits: torch.Tensor,
    action_idx: torch.Tensor,
    fg_weight: float = 20.0,
    patch: int = 8,
    weights: dict | None = None,
    z_last: torch.Tensor | None = None,
) -> dict:
    """The triple loss: patch (pixels of the decoded prediction), latent, and action classification.

    Args: pred_frame, target_frame (B, 3, S, S); z_pred, z_target (B, N, D), the target detached;
    logits (B, K) from the classifier; action_idx (B,) int64 the action actually taken; z_last (B, N, D)
    the latent of the last frame: when given, the latent loss is relative to the true change
    (1 = predicting "nothing changes"), so it speaks on the same scale as the patch loss (measured: the
    plain latent MSE was ~0.007, too small beside a patch loss of ~0.5 to steer the predictor).
    Returns a dict of scalars: patch, latent, action and their weighted sum 'total'.
    """
    w = weights or LOSS_WEIGHTS
    # Relative, foreground-weighted pixel error (0 perfect, 1 = dot erased): see relative_weighted_mse.
    # Cutting frames into patches only reorders pixels, so this equals the loss in patch space.
    patch_loss = relative_weighted_mse(pred_frame, target_frame, fg_weight)
    latent_loss = (z_pred - z_target.detach()).pow(2).mean()
    if z_last is not None:  # divide by the squared true change (a tiny floor: a batch of "stay" only)
        change = (z_target - z_last).detach().pow(2).mean()
        latent_loss = latent_loss / (change + 1e-4 * z_target.detach().pow(2).mean() + 1e-12)
    action_loss = F.cross_entropy(logits, action_idx)
    total = w["patch"] * patch_loss + w["latent"] * latent_loss + w["action"] * action_loss
    return {"patch": patch_loss, "latent": latent_loss, "action": action_loss, "total": total}

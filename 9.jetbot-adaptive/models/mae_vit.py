"""The masked-autoencoder ViT (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners").

Cut the frame into P x P patches, hide a random 30-85 % of them, encode only the visible ones with a
ViT, and ask a light decoder to paint every patch back. Hiding patches forces the encoder to learn
how scenes hang together instead of copying pixels. At use time nothing is hidden: ``encode`` sees
every patch and returns one token per patch.

Shape key: B batch, S frame side, P patch side, N patches (S/P)^2, V visible patches, E width (= D).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import EncoderLayer, sincos_2d
from .codec_common import check_frames, frozen_call, patchify, relative_weighted_mse, unpatchify

MASK_RATIO_MIN, MASK_RATIO_MAX = 0.3, 0.85  # drawn afresh for every training step


class MaskedAutoencoderViT(nn.Module):
    """ViT encoder with fixed 2-D sin-cos positions and a light decoder (one attention layer + MLP)."""

    kind = "mae"

    def __init__(
        self,
        img_size: int = 64,
        patch: int = 8,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        fg_weight: float = 20.0,
        mask_range: tuple[float, float] = (MASK_RATIO_MIN, MASK_RATIO_MAX),
    ):
        """img_size: S; patch: P; dim: token width E (the latent width D); depth/heads: encoder size;
        fg_weight: bright-pixel weight of the loss; mask_range: where the per-step mask ratio is drawn."""
        super().__init__()
        if img_size % patch:
            raise ValueError(f"img_size {img_size} must be divisible by the patch size {patch}")
        self.img_size, self.patch, self.latent_dim, self.fg_weight = img_size, patch, dim, fg_weight
        self.mask_range = mask_range
        grid = img_size // patch
        self.embed = nn.Linear(patch * patch * 3, dim)
        self.register_buffer("pos", sincos_2d(grid, dim), persistent=False)  # (N, E), not learned
        self.blocks = nn.ModuleList(EncoderLayer(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.dec_layer = EncoderLayer(dim, heads)
        self.dec_mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU())
        self.dec_out = nn.Linear(2 * dim, patch * patch * 3)
        nn.init.constant_(self.dec_out.bias, -1.0)  # start by painting black (see ConvAutoencoder)

    def _encode_tokens(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """x: (B, 3, S, S); keep: (B, V) indices of visible patches or None (all). Returns (B, V, E)."""
        tok = self.embed(patchify(x * 2 - 1, self.patch)) + self.pos  # (B, N, E)
        if keep is not None:
            tok = torch.gather(tok, 1, keep[..., None].expand(-1, -1, tok.shape[-1]))  # (B, V, E)
        for block in self.blocks:
            tok, _ = block(tok)
        return self.norm(tok)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, S, S) in [0, 1] -> tokens (B, N, D), nothing masked."""
        check_frames(x, self.img_size)
        return self._encode_tokens(x, None)

    def decode(self, z: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """tokens (B, N, D) -> frames (B, 3, S, S); linear output (clamp to [0, 1] to view).
        frozen: gradients flow to z only, not to the decoder's weights."""
        if frozen:
            h, _ = frozen_call(self.dec_layer, z + self.pos)
            patches = frozen_call(self.dec_out, frozen_call(self.dec_mlp, h))
        else:
            h, _ = self.dec_layer(z + self.pos)
            patches = self.dec_out(self.dec_mlp(h))  # (B, N, P*P*3)
        return (unpatchify(patches, self.patch) + 1) / 2

    def reconstruction_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Mask a random share of patches, encode the rest, decode all; loss on the patches.

        Returns (weighted MSE over all patches, reconstruction (B, 3, S, S), info with the mask ratio).
        """
        check_frames(x, self.img_size)
        b, n = x.shape[0], self.pos.shape[0]
        ratio = float(torch.empty(()).uniform_(*self.mask_range))
        n_keep = max(1, int(round(n * (1 - ratio))))
        order = torch.rand(b, n, device=x.device).argsort(dim=1)  # a random permutation per frame
        keep = order[:, :n_keep]  # (B, V)
        visible = self._encode_tokens(x, keep)  # (B, V, E)
        full = self.mask_token.expand(b, n, -1).clone()  # (B, N, E): every slot starts as "hidden"
        full.scatter_(1, keep[..., None].expand(-1, -1, full.shape[-1]), visible)
        recon = self.decode(full)
        loss = relative_weighted_mse(recon, x, self.fg_weight)  # relative: 0 perfect, 1 = all black
        return loss, recon, {"mask_ratio": 1 - n_keep / n, "tokens": None}

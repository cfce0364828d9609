"""Finite scalar quantisation (FSQ) and the FSQ autoencoder.

FSQ (Mentzer et al., 2023, "Finite Scalar Quantization: VQ-VAE Made Simple") replaces a learned VQ
codebook by rounding: each of the D latent channels is squashed into a bounded range and rounded to
one of ``levels[d]`` values. The codebook is implicit (the grid of all combinations, prod(levels)
codes), so there are no codebook vectors to collapse, no commitment loss and no EMA updates.

Rounding has zero gradient almost everywhere, so the backward pass pretends it was the identity
(the straight-through estimator): forward uses round(z), backward uses d/dz z = 1.
"""

import torch
from torch import nn

from .codec import Decoder, Encoder


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity in the backward pass (straight-through estimator)."""
    return z + (torch.round(z) - z).detach()


class FSQ(nn.Module):
    """Quantise each channel of a latent grid to a fixed set of levels.

    Args:
        levels: number of values per channel, e.g. (8, 5, 5, 5) -> 1000 codes.
    Shapes: z (B, D, h, w) with D = len(levels).
    """

    def __init__(self, levels=(8, 5, 5, 5)):
        super().__init__()
        levels_t = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("levels", levels_t, persistent=False)  # (D,)
        # basis turns a code (one digit per channel) into an integer index, like digits of a number
        basis = torch.cumprod(torch.tensor([1] + list(levels[:-1])), dim=0)
        self.register_buffer("basis", basis, persistent=False)  # (D,)
        self.dim = len(levels)
        self.codebook_size = int(torch.prod(levels_t).item())

    def _per_channel(self, t: torch.Tensor) -> torch.Tensor:
        """Reshape a (D,) tensor to broadcast over (B, D, h, w)."""
        return t.view(1, -1, 1, 1)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash z (B, D, h, w) per channel so that rounding yields exactly L integer values.

        tanh scaled to +-(L-1)/2 (a hair wider): for odd L rounding gives {-(L-1)/2, ..., (L-1)/2}, e.g.
        {-2, ..., 2} for L = 5. For even L the range is shifted down by a half, to about (-L/2, L/2 - 1),
        so that rounding gives {-L/2, ..., L/2 - 1}, e.g. {-4, ..., 3} for L = 8; the atanh shift keeps
        z = 0 at the code 0.
        """
        levels = self._per_channel(self.levels)
        half = (levels - 1) * (1 + 1e-3) / 2  # a hair wider so tanh can still reach the end levels
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Quantise z (B, D, h, w) -> zq (B, D, h, w): each channel's integer divided by floor(L/2), so
        odd L spans [-1, 1] and even L [-1, 1 - 2/L] (L = 8: -1, -0.75, ..., 0.75)."""
        half_width = self._per_channel(torch.div(self.levels, 2, rounding_mode="floor"))
        return round_ste(self.bound(z)) / half_width

    def codes_to_indices(self, zq: torch.Tensor) -> torch.Tensor:
        """Quantised latents (B, D, h, w) -> integer code indices (B, h, w) in [0, codebook_size)."""
        half_width = self._per_channel(torch.div(self.levels, 2, rounding_mode="floor"))
        digits = torch.round(zq * half_width + half_width).long()  # (B, D, h, w) each in [0, L_d)
        return (digits * self._per_channel(self.basis)).sum(1)

    def indices_to_codes(self, idx: torch.Tensor) -> torch.Tensor:
        """Integer indices (B, h, w) -> quantised latents (B, D, h, w); the inverse of codes_to_indices."""
        levels, basis = self._per_channel(self.levels).long(), self._per_channel(self.basis)
        digits = (idx.unsqueeze(1) // basis) % levels  # (B, D, h, w)
        half_width = torch.div(levels, 2, rounding_mode="floor")
        return (digits - half_width).float() / half_width


class FSQAutoencoder(nn.Module):
    """Encoder -> FSQ -> decoder. A frame becomes a 16x16 grid of discrete codes.

    Args:
        levels: FSQ levels per latent channel; the latent dim D is len(levels).
        ch: base channel width of the conv encoder/decoder.
    """

    def __init__(self, levels=(8, 5, 5, 5), ch: int = 16):
        super().__init__()
        self.fsq = FSQ(levels)
        self.encoder = Encoder(self.fsq.dim, ch)
        self.decoder = Decoder(self.fsq.dim, ch)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, 64, 64) in [0, 1] -> quantised latents (B, D, 16, 16)."""
        return self.fsq(self.encoder(x))

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, 64, 64) -> code indices (B, 16, 16): the discrete tokens later chapters predict."""
        return self.fsq.codes_to_indices(self.encode(x))

    def decode(self, zq: torch.Tensor) -> torch.Tensor:
        """Quantised latents (B, D, 16, 16) -> frames (B, 3, 64, 64)."""
        return self.decoder(zq)

    def forward(self, x: torch.Tensor) -> dict:
        """Reconstruct x (B, 3, 64, 64).

        Returns {"recon": (B, 3, 64, 64), "z": quantised (B, D, 16, 16), "z_pre": the encoder's output
        before tanh and rounding (B, D, 16, 16), which the training loss keeps in tanh's working range}.
        """
        z_pre = self.encoder(x)
        zq = self.fsq(z_pre)
        return {"recon": self.decode(zq), "z": zq, "z_pre": z_pre}

"""The latent action model (LAM) of Genie (Bruce et al., 2024): invent the actions from video alone.

Shape key: see trunk.py.

No labels. An encoder sees (frame_t, frame_t+1) and emits a latent action through a tiny discrete
bottleneck; a decoder must rebuild frame_t+1 from frame_t and that code only:

    (frame_t, frame_t+1) --ConvTrunk--> z (D) --quantise (9 or 8 codes)--> code --+
    frame_t -------------------------------------------------------------------> decoder --> frame_t+1

The decoder never sees frame_t+1 (the tests check it), and the code can take only K values, so the only
thing worth putting into it is what frame_t cannot tell: *what changed*, i.e. the action. Two
bottlenecks, ``quantizer``:

- "fsq": FSQ with levels (3, 3) -> 9 codes (a 3x3 grid: it may well learn dx and dy);
- "vq": a learned codebook of 8 vectors (Genie's choice), which can collapse (see vq.py).

Collapse: nothing forces the encoder to use its codes. Measured here: VQ with plain MSE, and FSQ without
the remedy below, both put every frame pair on one code (perplexity 1.00); FSQ has no codebook vectors to
lose, but an encoder output near 0 rounds to the centre code for every pair. The remedy (``spread``):
batch-normalise each latent dimension before quantising, so the codes must differ across a batch; the
decoder's gradient then decides what they mean.
"""

from __future__ import annotations

import torch
from torch import nn

from .dynamics import ConvDynamics
from .fsq import FSQ
from .trunk import ConvTrunk, check_frames, check_pair, pair_input
from .vq import VectorQuantizer


class LatentActionModel(nn.Module):
    """Encoder (frame pair -> code), quantiser, decoder (frame_t + code -> frame_t+1).

    Args:
        quantizer: "fsq" (``levels``) or "vq" (``n_codes`` vectors of ``vq_dim`` numbers).
        width: the encoder trunk's width; dec_width, dec_depth: the decoder's (a ConvDynamics).
        spread: batch-normalise the latent before quantising (the remedy against collapse).
    """

    def __init__(
        self, quantizer="fsq", levels=(3, 3), n_codes=8, vq_dim=4, width=16, dec_width=32, dec_depth=2,
        spread=True,
    ):  # fmt: skip
        super().__init__()
        if quantizer not in ("fsq", "vq"):
            raise ValueError(f"quantizer must be 'fsq' or 'vq', got {quantizer!r}")
        self.kind = quantizer
        if quantizer == "fsq":
            self.quant = FSQ(levels)
            self.code_dim = len(levels)
        else:
            self.quant = VectorQuantizer(n_codes, vq_dim)
            self.code_dim = vq_dim
        self.n_codes = self.quant.codebook_size
        self.encoder = ConvTrunk(9, width)
        self.to_code = nn.Linear(self.encoder.out_dim, self.code_dim)
        self.norm = nn.BatchNorm1d(self.code_dim, affine=False) if spread else nn.Identity()
        self.decoder = ConvDynamics(self.code_dim, dec_width, dec_depth)

    def encode(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x0, x1: (B, 3, 64, 64) -> code (B, D), index (B,) in [0, K), quantiser loss (0 for FSQ)."""
        check_pair(x0, x1)
        z = self.norm(self.to_code(self.encoder(pair_input(x0, x1))))  # (B, D) before quantisation
        if self.kind == "vq":
            return self.quant(z)
        code = self.quant(z[:, :, None, None])  # (B, D, 1, 1) on the FSQ grid, values in [-1, 1]
        idx = self.quant.codes_to_indices(code)[:, 0, 0]  # (B,)
        return code[:, :, 0, 0], idx, z.new_zeros(())

    def code_of_index(self, idx: torch.Tensor) -> torch.Tensor:
        """Code indices (B,) int64 in [0, K) -> code vectors (B, D): to decode with a chosen action."""
        if self.kind == "vq":
            return self.quant.lookup(idx)
        return self.quant.indices_to_codes(idx[:, None, None])[:, :, 0, 0]

    def decode(self, x0: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """frame_t (B, 3, 64, 64) and a code (B, D) -> predicted frame_t+1 (B, 3, 64, 64)."""
        check_frames(x0, "frame_t")
        return self.decoder(x0, code)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> dict:
        """The training pass: {"pred": (B, 3, 64, 64), "index": (B,), "quant_loss": scalar}."""
        code, idx, qloss = self.encode(x0, x1)
        return {"pred": self.decode(x0, code), "index": idx, "quant_loss": qloss}


def perplexity(idx: torch.Tensor, n_codes: int) -> float:
    """exp(entropy) of the code usage in a batch of indices (B,): 1 = collapse, n_codes = all used evenly."""
    p = torch.bincount(idx.flatten(), minlength=n_codes).float()
    p = p / p.sum().clamp(min=1)
    return float(torch.exp(-(p * (p + 1e-12).log()).sum()))

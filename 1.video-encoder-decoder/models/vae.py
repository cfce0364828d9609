"""A convolutional variational autoencoder (VAE) with a spatial Gaussian latent.

The encoder predicts, for every latent cell, a mean mu and a log-variance log(sigma^2). Training
samples z = mu + sigma * eps (the reparameterisation trick: the randomness eps ~ N(0, I) sits outside
the network, so gradients flow into mu and sigma) and adds beta * KL(q(z|x) || N(0, I)) to the
reconstruction loss. The KL pulls every code toward the prior so that the latent space is smooth
(interpolations decode to frames) and samples from N(0, I) decode to something frame-like; the price,
for large beta, is blur that can erase a dot 3 px across.
"""

import torch
from torch import nn

from .codec import Decoder, Encoder


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per element, in closed form.

    KL = 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2). Same shape as mu.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class VAE(nn.Module):
    """Encoder -> (mu, logvar) -> z -> decoder, with a (B, D, 16, 16) latent grid.

    Args:
        latent_dim: D, channels per latent cell.
        ch: base channel width of the conv encoder/decoder.
    """

    def __init__(self, latent_dim: int = 4, ch: int = 16):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = Encoder(2 * latent_dim, ch)  # predicts mu and logvar side by side
        self.decoder = Decoder(latent_dim, ch)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, 3, 64, 64) -> (mu, logvar), each (B, D, 16, 16)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 6.0)  # keep exp(logvar) finite early in training

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, D, 16, 16) -> frames (B, 3, 64, 64)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, sample: bool = True) -> dict:
        """Reconstruct x (B, 3, 64, 64).

        Args:
            sample: draw z = mu + sigma * eps (training); False decodes the mean (evaluation).
        Returns:
            {"recon": (B, 3, 64, 64), "z", "mu", "logvar": (B, D, 16, 16)}
        """
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return {"recon": self.decode(z), "z": z, "mu": mu, "logvar": logvar}

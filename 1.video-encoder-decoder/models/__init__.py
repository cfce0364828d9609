"""Chapter 1 models: the shared conv codec, a VAE and an FSQ autoencoder."""

from .codec import FRAME_SHAPE, Decoder, Encoder, check_frames, weighted_mse
from .fsq import FSQ, FSQAutoencoder, round_ste
from .vae import VAE, kl_to_standard_normal

__all__ = [
    "FRAME_SHAPE",
    "FSQ",
    "VAE",
    "Decoder",
    "Encoder",
    "FSQAutoencoder",
    "check_frames",
    "kl_to_standard_normal",
    "round_ste",
    "weighted_mse",
    "build_model",
]


def build_model(name: str, config: dict):
    """Make the model ``name`` ("vae" or "fsq") from a plain config dict (as stored in checkpoints)."""
    if name == "vae":
        return VAE(latent_dim=config["latent_dim"], ch=config["ch"])
    if name == "fsq":
        return FSQAutoencoder(levels=tuple(config["fsq_levels"]), ch=config["ch"])
    raise ValueError(f"unknown model {name!r}; expected 'vae' or 'fsq'")

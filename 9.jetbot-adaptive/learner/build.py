"""The two models a config asks for: the codec (CODEC = "cnn" or "mae") and the action-conditioned
predictor. Used by the learner, validate.py, the comparisons and the explorer, so all build the same.

Shape key: B batch, N tokens per frame, D latent width.
"""

from __future__ import annotations

import torch
from config import AdaptiveWorldModelConfig

from models import ConvAutoencoder, MaskedAutoencoderViT, TransformerActionConditionedPredictor


def build_codec(cfg: AdaptiveWorldModelConfig) -> torch.nn.Module:
    """The autoencoder named by cfg.CODEC ('cnn' or 'mae'): tokens (B, N, LATENT_DIM) for a frame."""
    if cfg.CODEC == "cnn":
        return ConvAutoencoder(
            cfg.MODEL_IMG_SIZE, cfg.LATENT_DIM, cfg.CNN_CHANNELS, cfg.FG_WEIGHT, cfg.CNN_WRAP, cfg.CNN_STRIDE
        )
    if cfg.CODEC == "mae":
        return MaskedAutoencoderViT(
            cfg.MODEL_IMG_SIZE,
            cfg.MAE_PATCH,
            cfg.LATENT_DIM,
            cfg.MAE_DEPTH,
            cfg.MAE_HEADS,
            cfg.FG_WEIGHT,
            (cfg.MASK_RATIO_MIN, cfg.MASK_RATIO_MAX),
        )
    raise ValueError(f"CODEC must be 'cnn' or 'mae', got {cfg.CODEC!r}")


def build_predictor(cfg: AdaptiveWorldModelConfig, n_actions: int) -> torch.nn.Module:
    """The predictor of the next latent for ``n_actions`` discrete actions (its classifier's classes)."""
    n_tokens = (cfg.MODEL_IMG_SIZE // (cfg.CNN_STRIDE if cfg.CODEC == "cnn" else cfg.MAE_PATCH)) ** 2
    return TransformerActionConditionedPredictor(
        n_tokens,
        cfg.LATENT_DIM,
        [tuple(r) for r in cfg.ACTION_RANGES],
        n_actions,
        cfg.PREDICTION_HISTORY_SIZE,
        cfg.PREDICTOR_DIM,
        cfg.PREDICTOR_DEPTH,
        cfg.PREDICTOR_HEADS,
        tuple(cfg.FILM_BLOCK_IDS),
        cfg.ACTION_EMBED_DIM,
        cfg.FILM_HIDDEN_DIM,
        cfg.TOKEN_MERGE,
        cfg.ACTION_CONDITIONING,
    )

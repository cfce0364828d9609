"""The chapter's models: two codecs with one interface, and the action-conditioned predictor."""

from .attention import MAX_TOKENS, EncoderLayer, MultiHeadSelfAttention, sincos_2d
from .codec_common import explained_variance, patchify, relative_weighted_mse, unpatchify, weighted_mse
from .conv_autoencoder import ConvAutoencoder
from .mae_vit import MASK_RATIO_MAX, MASK_RATIO_MIN, MaskedAutoencoderViT
from .predictor import (
    LOSS_WEIGHTS,
    ActionClassifier,
    ActionEmbedding,
    FiLM,
    TransformerActionConditionedPredictor,
    decode_prediction,
    predictor_losses,
)

__all__ = [
    "LOSS_WEIGHTS",
    "MASK_RATIO_MAX",
    "MASK_RATIO_MIN",
    "MAX_TOKENS",
    "ActionClassifier",
    "ActionEmbedding",
    "ConvAutoencoder",
    "EncoderLayer",
    "FiLM",
    "MaskedAutoencoderViT",
    "MultiHeadSelfAttention",
    "TransformerActionConditionedPredictor",
    "decode_prediction",
    "explained_variance",
    "patchify",
    "predictor_losses",
    "relative_weighted_mse",
    "sincos_2d",
    "unpatchify",
    "weighted_mse",
]

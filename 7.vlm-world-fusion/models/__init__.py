"""Chapter 7 models: the tiny ViT, the small language model and its tokenizer, the VLM that joins them,
the world model, and TheWorld, the fusion module (plus the loader for real Hugging Face LMs)."""

from .fusion import STAY, TheWorld
from .hf_lm import GEMMA, HFLanguageModel, HFTokenizer, LMUnavailable, load_lm
from .language import SmallLM, WordTokenizer
from .transformer import Attention, Block, RMSNorm, rope
from .vit import TinyViT, check_frames
from .vlm import IGNORE, VLM, text_batch
from .world_model import WorldModel, agent_position, world_model_loss

__all__ = [
    "GEMMA",
    "HFLanguageModel",
    "HFTokenizer",
    "LMUnavailable",
    "load_lm",
    "IGNORE",
    "STAY",
    "VLM",
    "Attention",
    "Block",
    "RMSNorm",
    "SmallLM",
    "TheWorld",
    "TinyViT",
    "WordTokenizer",
    "WorldModel",
    "agent_position",
    "check_frames",
    "rope",
    "text_batch",
    "world_model_loss",
]

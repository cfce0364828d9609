"""The small language model of this chapter and its word-level tokenizer.

A causal transformer (token embedding, RoPE blocks, RMSNorm, output head) over a tiny templated
vocabulary: every word the questions and answers use, plus the special tokens <bos>, <eos>, <pad> and
the world-token brackets <sow> / <eow> (start / end of world). It exposes the three calls the fusion
module needs from *any* language model (the same three are implemented for Hugging Face models in
hf_lm.py): ``embed(ids)``, ``hidden(embeds)`` and ``logits(hidden)``.

Shape key: B batch, L sequence length, D model width, N vocabulary size.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .transformer import Block, RMSNorm

WORDS = "where is the agent will be before after ? stay left right up down".split()
ANSWERS = [f"row{i}" for i in range(4)] + [f"col{i}" for i in range(4)]


class WordTokenizer:
    """Word-level tokenizer over the templated vocabulary: one id per whitespace-separated word."""

    def __init__(self):
        self.vocab = ["<pad>", "<bos>", "<eos>", "<sow>", "<eow>", *WORDS, *ANSWERS]
        self.ids = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2
        self.sow_ids, self.eow_ids = [3], [4]

    def encode(self, text: str) -> list[int]:
        """'where is the agent ?' -> [5, 6, 7, 8, 13]; an unknown word is a ValueError naming it."""
        unknown = [w for w in text.split() if w not in self.ids]
        if unknown:
            raise ValueError(f"unknown word(s) {unknown}; the vocabulary is {self.vocab[5:]}")
        return [self.ids[w] for w in text.split()]

    def decode(self, ids) -> str:
        """Ids -> words, stopping at <eos> and skipping special tokens."""
        words = []
        for i in ids:
            if int(i) == self.eos_id:
                break
            if int(i) >= 5:
                words.append(self.vocab[int(i)])
        return " ".join(words)


class SmallLM(nn.Module):
    """A causal transformer language model: embed -> blocks (causal, RoPE) -> RMSNorm -> head.

    Args:
        vocab: N. dim: D. depth, heads: the blocks.
    """

    def __init__(self, vocab: int, dim: int = 128, depth: int = 4, heads: int = 4):
        super().__init__()
        self.dim = dim
        self.tok = nn.Embedding(vocab, dim)
        nn.init.normal_(self.tok.weight, std=1.0)  # unit-scale embeddings, like the image tokens
        self.blocks = nn.ModuleList([Block(dim, heads, causal=True, use_rope=True) for _ in range(depth)])
        self.norm = RMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (B, L) int64 -> embeddings (B, L, D)."""
        return self.tok(ids)

    def hidden(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings (B, L, D) -> final hidden states (B, L, D); position i has read tokens 0..i only.
        positions (L,) or (B, L): the RoPE positions (default 0..L-1)."""
        for block in self.blocks:
            x = block(x, positions)
        return self.norm(x)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., D) -> next-token logits (..., N)."""
        return self.head(h)

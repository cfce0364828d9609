"""The vision-language model: a tiny ViT, a projection of its features to the language model's width,
and a language model that reads them. Also the sequence layout, the answer-only loss and greedy decoding
that the fusion module reuses.

The sequence the VLM reads, and the one TheWorld reads (vision tokens first, then world tokens):

    VLM alone:  [<bos>, image tokens (P), question words, answer words, <eos>]
    TheWorld:   [<bos>, image tokens (P), <sow>, world tokens (W), <eow>, question words, answer words, <eos>]

The VLM is pre-trained on the first layout only: its language model has never seen a world token.

Labels are -100 (ignored by the loss) everywhere except the answer words and <eos>: we teach the model to
answer, not to predict the question or the pixels.

Shape key: B batch, P image tokens (16), W world tokens, Q text tokens, L whole sequence, D LM width,
V vision width.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .vit import TinyViT

IGNORE = -100  # the label of every position the loss must skip


def text_batch(tokenizer, questions: list[str], answers: list[str] | None = None):
    """Token ids of question (+ answer + <eos>) per sample, right-padded; labels on the answer part only.

    Returns:
        ids (B, Q) int64 and labels (B, Q) int64 (IGNORE on question words and padding).
    """
    seqs, labs = [], []
    for i, q in enumerate(questions):
        q_ids = tokenizer.encode(q)
        a_ids = [*tokenizer.encode(answers[i]), tokenizer.eos_id] if answers is not None else []
        seqs.append(q_ids + a_ids)
        labs.append([IGNORE] * len(q_ids) + a_ids)
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for i, (s, lab) in enumerate(zip(seqs, labs, strict=True)):
        ids[i, : len(s)], labels[i, : len(lab)] = torch.tensor(s), torch.tensor(lab)
    return ids, labels


class VLM(nn.Module):
    """Tiny ViT -> linear projection (image tokens) -> language model.

    Args:
        lm: any object with ``dim``, ``embed``, ``hidden``, ``logits`` (SmallLM or a HFLanguageModel).
        tokenizer: its tokenizer (encode, decode, bos_id, eos_id, pad_id, sow_ids, eow_ids).
        vision: a TinyViT (a fresh one if None).
    """

    def __init__(self, lm: nn.Module, tokenizer, vision: TinyViT | None = None):
        super().__init__()
        self.lm, self.tokenizer = lm, tokenizer
        self.vision = vision if vision is not None else TinyViT()
        self.img_proj = nn.Linear(self.vision.dim, lm.dim)  # SigLIP features -> LM width, as in Gemma 3

    def image_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, 3, H, W) in [0, 1] -> image tokens (B, P, D)."""
        return self.img_proj(self.vision(frames))

    def special(self, ids: list[int], batch: int, device) -> torch.Tensor:
        """Embeddings of fixed special token ids, repeated over the batch: (B, len(ids), D)."""
        return self.lm.embed(torch.tensor(ids, device=device)[None].expand(batch, -1))

    def sequence(self, images: torch.Tensor, world: torch.Tensor | None, text_ids: torch.Tensor):
        """Lay out [<bos>, image, <sow>, world, <eow>, text] as embeddings ([<bos>, image, text] without
        world tokens).

        Args:
            images: (B, P, D) image tokens. world: (B, W, D) world tokens or None (the VLM alone).
            text_ids: (B, Q) question (+ answer) ids.
        Returns:
            embeds (B, L, D) and the prefix length (positions before the text).
        """
        B, device, tok = images.shape[0], images.device, self.tokenizer
        parts = [self.special([tok.bos_id], B, device), images]
        if world is not None:
            parts += [self.special(tok.sow_ids, B, device), world, self.special(tok.eow_ids, B, device)]
        prefix = torch.cat(parts, 1)  # (B, L - Q, D)
        return torch.cat([prefix, self.lm.embed(text_ids.to(device))], 1), prefix.shape[1]

    def answer_loss(
        self, embeds: torch.Tensor, prefix: int, text_labels: torch.Tensor, positions=None
    ) -> torch.Tensor:
        """Cross-entropy of next-token predictions on labelled (answer) positions only.

        The token at position i is predicted from position i - 1, so labels are shifted by one; logits are
        computed only where a label exists (with Gemma's 262k-word vocabulary that is most of the cost).
        positions: (B, L) RoPE positions, or None for 0..L-1.
        """
        B = embeds.shape[0]
        labels = torch.cat([torch.full((B, prefix), IGNORE, dtype=torch.long), text_labels], 1)  # (B, L)
        labels = labels.to(embeds.device)
        h = self.lm.hidden(embeds, positions)  # (B, L, D)
        target = labels[:, 1:]  # (B, L-1): what position i must predict is token i + 1
        keep = target != IGNORE
        return F.cross_entropy(self.lm.logits(h[:, :-1][keep]).float(), target[keep])

    def forward(self, frames, text_ids, text_labels, agent_patch=None, text_gap=None, later=None):
        """Answer-only loss for frames (B, 3, H, W) and text (B, Q), images and text only; plus the vision
        probe's cross-entropy when ``agent_patch`` (B,) (the patch index) is given.

        later: (B, M, 3, H, W) or None: more pictures (the next frames of a recording), whose image tokens
        follow the first picture's: [<bos>, picture 0, picture 1, ..., picture M, text].

        text_gap: (B,) int64 or None. The text's RoPE positions start this many positions after the image
        (nothing sits in between): the LM learns to read the picture at any distance from the question,
        as a real LM that has read images in every kind of document."""
        features = self.vision(frames)  # (B, P, V)
        images = self.img_proj(features)  # (B, P, D)
        if later is not None:
            more = self.image_tokens(later.flatten(0, 1)).view(
                len(frames), -1, images.shape[-1]
            )  # (B, MP, D)
            images = torch.cat([images, more], 1)  # (B, (1 + M) P, D)
        embeds, prefix = self.sequence(images, None, text_ids)
        positions = None
        if text_gap is not None:
            positions = torch.arange(embeds.shape[1], device=embeds.device).expand(len(embeds), -1)  # (B, L)
            positions = positions + (positions >= prefix) * text_gap.to(embeds.device)[:, None]
        loss = self.answer_loss(embeds, prefix, text_labels, positions)
        if agent_patch is not None:
            loss = loss + F.cross_entropy(self.vision.agent_logits(features), agent_patch.to(frames.device))
        return loss

    @torch.no_grad()
    def greedy(self, images, world, prompt_ids: torch.Tensor, max_new_tokens: int = 4) -> list[str]:
        """Greedy decoding: append the most likely next token until <eos> (or max_new_tokens).

        Args: images (B, P, D); world (B, W, D) or None; prompt_ids (B, Q) questions of equal length.
        Returns: the B decoded answers.
        """
        ids = prompt_ids.to(images.device)
        done = torch.zeros(len(ids), dtype=torch.bool, device=images.device)
        new = []
        for _ in range(max_new_tokens):
            embeds, _ = self.sequence(images, world, ids)
            nxt = self.lm.logits(self.lm.hidden(embeds)[:, -1]).argmax(-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, self.tokenizer.eos_id), nxt)
            new.append(nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == self.tokenizer.eos_id
            if done.all():
                break
        out = torch.stack(new, 1).tolist()  # (B, new tokens)
        return [self.tokenizer.decode(row).strip() for row in out]

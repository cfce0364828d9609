"""TheWorld in small: fuse a world model's latents into a vision-language model.

    frame ──► world model: encode, then imagine S action words ──► latents (S+1, Z)
                   │  world projection (trainable MLP) + temporal embedding t = 0..S (trainable)
                   ▼
    [<bos>, <sow>, world tokens (S+1), <eow>, image tokens (P), question, answer]  ──► frozen LM

By default only the world projection and the temporal embeddings train: the vision encoder, the
language model and the world model are frozen (each has its own flag). ``num_world_steps`` is set at
construction and can be overridden per call (0: only the present frame's latent).

Shape key: B batch, S world steps, Z world latent width, D LM width, P image tokens, Q text tokens.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vlm import VLM, text_batch
from .world_model import WorldModel

STAY = 0  # action id of 'stay': the world model stands still when a question gives no actions


class TheWorld(nn.Module):
    """A VLM that also reads world tokens.

    Args:
        vlm: the vision-language model (vision + image projection + LM). world_model: a WorldModel.
        num_world_steps: S, how many steps the world model imagines by default.
        max_world_steps: size of the temporal embedding table (S may never exceed it).
        freeze_vision / freeze_language / freeze_world: keep those parts fixed (no gradient).
        hidden: width of the world projection's hidden layer.
    """

    def __init__(
        self,
        vlm: VLM,
        world_model: WorldModel,
        num_world_steps: int = 3,
        max_world_steps: int = 8,
        freeze_vision: bool = True,
        freeze_language: bool = True,
        freeze_world: bool = True,
        hidden: int = 256,
    ):
        super().__init__()
        if not 0 <= num_world_steps <= max_world_steps:
            raise ValueError(f"num_world_steps must be in [0, {max_world_steps}], got {num_world_steps}")
        self.vlm, self.world_model = vlm, world_model
        self.num_world_steps, self.max_world_steps = num_world_steps, max_world_steps
        D = vlm.lm.dim
        self.world_proj = nn.Sequential(
            nn.Linear(world_model.latent, hidden), nn.GELU(), nn.Linear(hidden, D)
        )
        self.temporal = nn.Parameter(torch.randn(max_world_steps + 1, D) * 0.02)  # t = 0, 1, ..., max
        self.frozen = {"vision": freeze_vision, "language": freeze_language, "world": freeze_world}
        for part, frozen in zip((vlm.vision, vlm.img_proj), (freeze_vision, freeze_vision), strict=True):
            part.requires_grad_(not frozen)
        vlm.lm.requires_grad_(not freeze_language)
        world_model.requires_grad_(not freeze_world)

    def steps(self, num_world_steps: int | None) -> int:
        """The per-call override, or the constructor's default; checked against the temporal table."""
        s = self.num_world_steps if num_world_steps is None else int(num_world_steps)
        if not 0 <= s <= self.max_world_steps:
            raise ValueError(f"num_world_steps must be in [0, {self.max_world_steps}], got {s}")
        return s

    def world_latents(self, frames: torch.Tensor, actions: torch.Tensor | None, num_world_steps=None):
        """Roll the world model forward: (B, S+1, Z). Missing actions (or a present question) mean 'stay';
        extra actions beyond S are not imagined."""
        S, B = self.steps(num_world_steps), frames.shape[0]
        acts = torch.full((B, S), STAY, dtype=torch.long, device=frames.device)
        if actions is not None:
            if actions.ndim != 2 or actions.shape[0] != B:
                raise ValueError(f"actions must be (B, K) int64 with B = {B}, got {tuple(actions.shape)}")
            n = min(S, actions.shape[1])
            acts[:, :n] = actions[:, :n].to(frames.device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen["world"]):
            return self.world_model.rollout(frames, acts)

    def world_tokens(self, latents: torch.Tensor, mode: str = "on") -> torch.Tensor:
        """Latents (B, S+1, Z) -> world tokens (B, S+1, D): projection + temporal embedding.

        mode 'zero' replaces every world token by zeros (the ablation: the LM receives nothing)."""
        tokens = self.world_proj(latents) + self.temporal[: latents.shape[1]]  # (B, S+1, D)
        if mode == "zero":
            return torch.zeros_like(tokens)
        if mode != "on":
            raise ValueError(f"mode must be 'on' or 'zero', got {mode!r}")
        return tokens

    def forward(self, frames, text_ids, text_labels, actions=None, num_world_steps=None, mode="on"):
        """Answer-only loss. frames (B, 3, H, W); text_ids, text_labels (B, Q); actions (B, K) or None."""
        world = self.world_tokens(self.world_latents(frames, actions, num_world_steps), mode)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen["vision"]):
            images = self.vlm.image_tokens(frames)  # (B, P, D)
        embeds, prefix = self.vlm.sequence(world, images, text_ids)
        return self.vlm.answer_loss(embeds, prefix, text_labels)

    @torch.no_grad()
    def generate(
        self,
        image: torch.Tensor,
        question,
        actions=None,
        num_world_steps=None,
        mode="on",
        max_new_tokens: int = 4,
    ):
        """Answer questions about images: image (3, H, W) or (B, 3, H, W); question a str or B strs of
        equal token length; actions (K,) / (B, K) int64 action ids or None. Returns a str (or B strs).

        mode 'off' answers with the VLM alone (an empty world slot)."""
        single = image.ndim == 3
        frames = image[None] if single else image
        questions = [question] if isinstance(question, str) else list(question)
        if actions is not None:
            actions = torch.as_tensor(actions, dtype=torch.long)
            actions = actions[None] if actions.ndim == 1 else actions
        ids, _ = text_batch(self.vlm.tokenizer, questions)
        if len({len(self.vlm.tokenizer.encode(q)) for q in questions}) != 1 or len(questions) != len(frames):
            raise ValueError("generate needs one question per image, all of the same token length")
        world = None
        if mode != "off":
            world = self.world_tokens(self.world_latents(frames, actions, num_world_steps), mode)
        answers = self.vlm.greedy(world, self.vlm.image_tokens(frames), ids, max_new_tokens)
        return answers[0] if single else answers

    def parameter_report(self) -> dict:
        """Trainable and total parameter counts, and the trainable percentage."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / total}

    def trainable_state_dict(self) -> dict:
        """Only the parameters that train (by default: the world projection and temporal embeddings)."""
        return {n: p.detach().cpu().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable(self, state: dict) -> None:
        """Load what trainable_state_dict saved; a missing or mis-shaped entry is a ValueError."""
        params = dict(self.named_parameters())
        for name, value in state.items():
            if name not in params or params[name].shape != value.shape:
                raise ValueError(f"checkpoint entry {name!r} does not fit this model")
            params[name].data.copy_(value)
        missing = {n for n, p in params.items() if p.requires_grad} - set(state)
        if missing:
            raise ValueError(f"checkpoint lacks trainable parameters {sorted(missing)[:3]}")

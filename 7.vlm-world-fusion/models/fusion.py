"""TheWorld in small: fuse a world model's latents into a vision-language model.

    frame ──► world model: encode, then imagine S action words ──► latent grids (S+1, N, C)
                   │  flatten each grid to N tokens; one trainable linear map C -> D for every token,
                   │  plus a trainable temporal embedding per step t = 0..S
                   ▼
    [<bos>, image tokens (P), <sow>, world tokens ((S+1) N), <eow>, question, answer]  ──► frozen LM

As in TheWorld: vision tokens first, then world tokens; each step's latent grid is flattened and every
position goes through the same linear projection; the temporal embedding tells the steps apart. By
default only that projection and the temporal embeddings train: the vision encoder, the language model
and the world model are frozen (each has its own flag). ``num_world_steps`` is set at construction and
can be overridden per call (0: only the present frame's grid).

Shape key: B batch, S world steps, N grid positions per step (16), C latent channels, D LM width,
P image tokens, Q text tokens.
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
    ):
        super().__init__()
        if not 0 <= num_world_steps <= max_world_steps:
            raise ValueError(f"num_world_steps must be in [0, {max_world_steps}], got {num_world_steps}")
        self.vlm, self.world_model = vlm, world_model
        self.num_world_steps, self.max_world_steps = num_world_steps, max_world_steps
        D = vlm.lm.dim
        self.world_proj = nn.Linear(world_model.channels, D)  # C -> D, shared by every grid position
        self.temporal = nn.Parameter(torch.randn(max_world_steps + 1, D) * 0.02)  # t = 0, 1, ..., max
        # Which grid position a token comes from. Our LM finds a picture's cells from the content of its
        # tokens (the ViT adds a position embedding to every patch), and a conv latent barely says where
        # it sits, so the world tokens get a trainable spatial embedding too (TheWorld has only temporal).
        self.spatial = nn.Parameter(torch.randn(world_model.tokens_per_step, D) * 0.02)  # (N, D)
        self.frozen = {}
        for part, frozen in (
            ("vision", freeze_vision),
            ("language", freeze_language),
            ("world", freeze_world),
        ):
            self.set_frozen(part, frozen)

    def set_frozen(self, part: str, frozen: bool) -> None:
        """Freeze or unfreeze one part: 'vision' (ViT + image projection), 'language' or 'world'.
        Staged unfreezing calls this between stages (projection -> + vision -> + language)."""
        modules = {
            "vision": (self.vlm.vision, self.vlm.img_proj),
            "language": (self.vlm.lm,),
            "world": (self.world_model,),
        }
        if part not in modules:
            raise ValueError(f"part must be one of {sorted(modules)}, got {part!r}")
        for m in modules[part]:
            m.requires_grad_(not frozen)
        self.frozen[part] = frozen

    def steps(self, num_world_steps: int | None) -> int:
        """The per-call override, or the constructor's default; checked against the temporal table."""
        s = self.num_world_steps if num_world_steps is None else int(num_world_steps)
        if not 0 <= s <= self.max_world_steps:
            raise ValueError(f"num_world_steps must be in [0, {self.max_world_steps}], got {s}")
        return s

    def world_latents(self, frames: torch.Tensor, actions: torch.Tensor | None, num_world_steps=None):
        """Roll the world model forward: latent grids (B, S+1, N, C). Missing actions (or a present
        question) mean 'stay'; extra actions beyond S are not imagined."""
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
        """Latent grids (B, S+1, N, C) -> world tokens (B, (S+1) N, D): the grid of step t flattened,
        each position projected, plus the temporal embedding of t.

        mode 'zero' replaces every world token by zeros (the ablation: the LM receives nothing)."""
        steps = latents.shape[1]
        tokens = self.world_proj(latents) + self.temporal[:steps, None] + self.spatial  # (B, S+1, N, D)
        tokens = tokens.flatten(1, 2)  # (B, (S+1) N, D): step 0's grid row by row, then step 1's, ...
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
        embeds, prefix = self.vlm.sequence(images, world, text_ids)
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
        answers = self.vlm.greedy(self.vlm.image_tokens(frames), world, ids, max_new_tokens)
        return answers[0] if single else answers

    def parameter_report(self) -> dict:
        """Trainable and total parameter counts, and the trainable percentage."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / total}

    def trainable_state_dict(self) -> dict:
        """Only the parameters that train (by default: the world projection and temporal embeddings;
        with a part unfrozen, its weights too)."""
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

"""The learner's memory: recent frames, the action taken after each, and which segment they belong to.

A *segment* is an unbroken stretch of experience (a new one starts at reset or resume), so a training
sample never stitches together frames that did not follow each other. Frames are stored as uint8 at
the model's resolution: 4,000 frames of 64x64 cost 49 MB.

Shape key: B batch, H history, S frame side.
"""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """A ring of (frame, action index after it, segment id) with a sampler of training samples."""

    def __init__(self, capacity: int, size: int):
        """capacity: frames kept; size: S, the side of the stored (3, S, S) frames."""
        self.capacity, self.size = capacity, size
        self.frames = torch.zeros(capacity, 3, size, size, dtype=torch.uint8)
        self.actions = torch.full((capacity,), -1, dtype=torch.long)  # -1: no action taken after it yet
        self.segments = torch.full((capacity,), -1, dtype=torch.long)
        self.count = 0  # frames ever appended; slot of frame i is i % capacity
        self.segment = 0

    def new_segment(self) -> None:
        """The next frame does not follow the previous one (reset, resume, relocation)."""
        self.segment += 1

    def append(self, frame: torch.Tensor) -> None:
        """frame: (3, S, S) float in [0, 1]; stored as uint8 in the current segment."""
        slot = self.count % self.capacity
        self.frames[slot] = (frame.clamp(0, 1) * 255).round().to(torch.uint8)
        self.actions[slot], self.segments[slot] = -1, self.segment
        self.count += 1

    def set_last_action(self, idx: int) -> None:
        """Record that action ``idx`` was executed after the newest frame."""
        self.actions[(self.count - 1) % self.capacity] = idx

    def valid_ends(self, history: int) -> np.ndarray:
        """Absolute indices of target frames that complete a sample: ``history`` consecutive frames,
        then the target, all in one segment with every action known.

        Vectorised: segment ids only grow along the ring's absolute order, so "same segment at both
        ends" means "same segment throughout"; a running count of missing actions checks the rest.
        """
        lo = max(0, self.count - self.capacity)
        if self.count - lo <= history:
            return np.zeros(0, dtype=np.int64)
        order = np.arange(lo, self.count)
        seg = self.segments[order % self.capacity].numpy()
        missing = np.concatenate([[0], np.cumsum(self.actions[order % self.capacity].numpy() < 0)])
        ends = np.arange(history, len(order))  # positions within ``order``
        ok = (seg[ends] == seg[ends - history]) & (missing[ends] - missing[ends - history] == 0)
        return order[ends[ok]]

    def sample(self, ends: list[int], history: int) -> dict:
        """Build a batch from target indices ``ends``.

        Returns frames (B, H+1, 3, S, S) float (history then target) and action_idx (B, H) int64, the
        action taken after each history frame (the last one is the action whose effect is the target).
        """
        frame_ids = torch.tensor(ends)[:, None] - torch.arange(history, -1, -1)[None]  # (B, H+1)
        frames = self.frames[frame_ids % self.capacity].float() / 255.0
        return {"frames": frames, "action_idx": self.actions[frame_ids[:, :-1] % self.capacity]}

    def recent(self, n: int) -> dict:
        """The newest ``n`` frames (uint8) with their actions and segments, for saving."""
        n = min(n, self.count, self.capacity)
        idx = torch.arange(self.count - n, self.count) % self.capacity
        return {
            "frames": self.frames[idx].clone(),
            "actions": self.actions[idx].clone(),
            "segments": self.segments[idx].clone(),
        }

    def restore(self, saved: dict) -> None:
        """Refill from ``recent`` output; the restored frames form their own segments."""
        for f, a, s in zip(saved["frames"], saved["actions"], saved["segments"], strict=True):
            slot = self.count % self.capacity
            self.frames[slot], self.actions[slot], self.segments[slot] = f, a, int(s) - 10**6
            self.count += 1
        self.new_segment()


def rng_choice(rng: np.random.Generator, items: list[int], k: int, must: int | None = None) -> list[int]:
    """k items drawn with replacement from ``items``; ``must`` (the freshest sample) always first."""
    picks = [int(items[i]) for i in rng.integers(0, len(items), size=k)]
    if must is not None:
        picks[0] = must
    return picks

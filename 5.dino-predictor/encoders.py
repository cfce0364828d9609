"""The frozen encoders the world model can predict in, behind one interface, and the optional DINOv2.

    dino     our small ViT trained with DINO in this chapter (train.py stage 1), then frozen
    random   the same ViT with its random initial weights, frozen: what the architecture alone gives
    pixels   no encoder at all: each 16x16 patch's pixels (averaged over 4x4 blocks) are its "feature"
    dinov2_vits14   Meta's pretrained DINOv2 ViT-S/14 through torch.hub, when its weights are reachable

Every encoder maps uint8 frames to (N=16, D) patch features, standardised per feature channel with the
training set's mean and std (so that errors are comparable across encoders and the predictor sees
inputs of unit scale).

Shape key: B batch, T frames, N = 16 patch tokens, D feature dim.
"""

from __future__ import annotations

import socket

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils import UserError

DINOV2 = "dinov2_vits14"


class DinoV2Patches(nn.Module):
    """DINOv2 ViT-S/14 as a patch-feature encoder: 64x64 frames -> resized to 224 -> 16x16 patch tokens
    of 384 dims -> average-pooled 4x4 to our 4x4 grid, so the same predictor fits every encoder."""

    def __init__(self, hub_model: nn.Module):
        super().__init__()
        self.model = hub_model.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) in [0, 1] -> (B, 16, 384)."""
        x = F.interpolate(x, size=224, mode="bilinear", align_corners=False)
        tok = self.model.forward_features((x - self.mean) / self.std)["x_norm_patchtokens"]  # (B, 256, 384)
        grid = tok.transpose(1, 2).reshape(len(x), -1, 16, 16)  # (B, 384, 16, 16)
        return F.avg_pool2d(grid, 4).flatten(2).transpose(1, 2)  # (B, 16, 384)


def load_dinov2() -> DinoV2Patches:
    """Load DINOv2 ViT-S/14 from torch.hub (the cache, else the network); a UserError in one line if not."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # fail instead of hanging on a network that drops packets
    try:
        model = torch.hub.load("facebookresearch/dinov2", DINOV2, trust_repo=True, verbose=False)
    except Exception as e:  # no network, no cache, a proxy, a changed hub repo: all mean "not available"
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UserError(
            f"--encoder {DINOV2} needs the DINOv2 weights from torch.hub, which are not reachable here "
            f"({msg}); use the default --encoder dino, trained in this chapter"
        ) from None
    finally:
        socket.setdefaulttimeout(old)
    return DinoV2Patches(model)


class PixelPatches(nn.Module):
    """No encoder: frames (B, 3, 64, 64) -> (B, N=16, D=48), each 16x16 patch's pixels, averaged over 4x4
    blocks (the frame at 16x16, where a link is still 1.5 px thick) so that the predictor on them costs
    what the others cost. Planning in this "feature space" is planning with a pixel distance."""

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) in [0, 1] -> (B, 16, 48)."""
        b = len(x)
        x = F.avg_pool2d(x, 4)  # (B, 3, 16, 16)
        return x.view(b, 3, 4, 4, 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, 16, 48)


class FrozenEncoder(nn.Module):
    """A frozen patch-feature encoder plus the per-channel standardisation of its features.

    Args:
        net: any module with ``patch_features(x (B, 3, 64, 64)) -> (B, N, D)``.
    """

    def __init__(self, net: nn.Module, feat_dim: int):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("mu", torch.zeros(feat_dim))
        self.register_buffer("sigma", torch.ones(feat_dim))

    @torch.no_grad()
    def raw(self, frames: np.ndarray, device, batch: int = 256) -> torch.Tensor:
        """uint8 frames (..., 64, 64, 3) -> raw features (..., N, D) on the CPU, encoded in batches."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.shape[-3:] != (64, 64, 3):
            got = (
                f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
            )
            raise ValueError(f"expected frames (..., 64, 64, 3) uint8 (a 64x64 RGB image), got {got}")
        lead = frames.shape[:-3]
        flat = frames.reshape(-1, 64, 64, 3)
        out = []
        for i in range(0, len(flat), batch):
            x = torch.from_numpy(flat[i : i + batch]).to(device).permute(0, 3, 1, 2).float() / 255.0
            out.append(self.net.patch_features(x).cpu())
        z = torch.cat(out)  # (M, N, D)
        return z.view(*lead, *z.shape[1:])

    def fit_stats(self, z: torch.Tensor) -> None:
        """Set the standardisation from raw training features z (..., D)."""
        flat = z.reshape(-1, z.shape[-1])
        self.mu.copy_(flat.mean(0))
        self.sigma.copy_(flat.std(0) + 1e-6)

    @torch.no_grad()
    def encode(self, frames: np.ndarray, device, batch: int = 256) -> torch.Tensor:
        """uint8 frames (..., 64, 64, 3) -> standardised features (..., N, D) on the CPU."""
        return (self.raw(frames, device, batch) - self.mu.cpu()) / self.sigma.cpu()

"""Play inside the dream: drive the learned world model with the keyboard.

    uv run play.py                       # the toroidal dot; arrows or WASD move, space stays, q quits
    uv run play.py --world wall          # the point mass (each key pushes a full step that way)
    uv run play.py --headless --actions RRUULLDD      # no window: writes outputs/play_dot.gif

Nothing here runs the simulator after the first frame: every frame you see is the model's prediction
from its own previous prediction and your key, decoded by the codec. Letters for --actions: L R U D,
and S or . for stay.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from evaluate import MAIN, decode, encode, load_models
from PIL import Image

from data_utils import ACTION_NAMES, make_env
from utils import OUT_HELP, UserError, exit_on_user_error, load_checkpoint, output_root, pick_device

LETTERS = {"S": 0, ".": 0, "L": 1, "R": 2, "U": 3, "D": 4}  # letter -> the dot's action index
KEYS = {ord("a"): 1, ord("d"): 2, ord("w"): 3, ord("s"): 4, ord(" "): 0}  # WASD and space
KEYS |= {65361: 1, 65363: 2, 65362: 3, 65364: 4, 2424832: 1, 2555904: 2, 2490368: 3, 2621440: 4}  # arrows
CONTINUOUS = [(0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)]  # the same 5 moves as (dx, dy)
NO_DISPLAY = "no display found: run `uv run play.py --headless --actions RRUULLDD` to write a GIF instead"


class Dreamer:
    """Keeps the imagined context (up to max_frames frames and their actions) and steps it on demand."""

    def __init__(self, world, model, codec, start_frame: np.ndarray, device):
        """start_frame: (64, 64, 3) uint8, the one real frame the dream starts from."""
        self.world, self.model, self.codec, self.device = world, model, codec, device
        self.frames = [encode(codec, start_frame[None, None], device)[:, 0]]  # list of (1, N, P)
        self.actions, self.image = [], start_frame.astype(np.float32) / 255.0

    @torch.no_grad()
    def step(self, action: int) -> np.ndarray:
        """Apply move ``action`` (0..4); return the dreamed frame (64, 64, 3) float in [0, 1]."""
        a = torch.tensor([[action]]) if self.world == "dot" else torch.tensor([[CONTINUOUS[action]]])
        self.actions.append(a.to(self.device))  # (1, 1) or (1, 1, 2)
        w = self.model.max_frames
        seq = torch.stack(self.frames[-w:], dim=1)  # (1, <=W, N, P)
        nxt = self.model.to_tokens(self.model(seq, torch.cat(self.actions[-w:], dim=1))[:, -1])  # (1, N, P)
        self.frames = self.frames[-w:] + [nxt]
        self.actions = self.actions[-w:]
        self.image = decode(self.codec, nxt[:, None])[0, 0]
        return self.image


def render(image: np.ndarray, step: int, action: int, scale: int) -> np.ndarray:
    """Upscale a frame (64, 64, 3) in [0, 1] and write the step and action under it; (H, W, 3) uint8 RGB."""
    import cv2

    big = np.kron((image * 255).astype(np.uint8), np.ones((scale, scale, 1), dtype=np.uint8))
    bar = np.zeros((28, big.shape[1], 3), dtype=np.uint8)
    label = f"step {step}  action {ACTION_NAMES[action] if step else '-'}"
    cv2.putText(bar, label, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([big, bar], axis=0)


def has_display() -> bool:
    """True when a window can be opened (an X or Wayland display on Linux; assumed elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        default="",
        help="written by train.py (default: checkpoints/action_dynamics.pt under --out)",
    )
    p.add_argument("--world", default="dot", choices=["dot", "wall"])
    p.add_argument("--method", default=MAIN, choices=["concat", "token", "film"], help="which conditioning")
    p.add_argument("--headless", action="store_true", help="no window: apply --actions and write a GIF")
    p.add_argument(
        "--actions", default="RRUULLDD", help="headless actions: letters L R U D S (default RRUULLDD)"
    )
    p.add_argument("--scale", type=int, default=6, help="upscaling of the 64x64 frame (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="picks the real start frame (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--out", default="", help=OUT_HELP + "; the GIF goes to its outputs/")
    p.add_argument("--quick", action="store_true", help="accepted for symmetry; play is already quick")
    args = p.parse_args(argv)
    args.checkpoint = args.checkpoint or str(output_root(args.out) / "checkpoints" / "action_dynamics.pt")
    return args


def main(argv=None) -> None:
    """Load the model, then run the interactive loop (window) or the scripted one (headless GIF)."""
    args = parse_args(argv)
    if not args.headless and not has_display():
        raise UserError(NO_DISPLAY)
    bad = sorted(set(args.actions.upper()) - set(LETTERS))
    if args.headless and (bad or not args.actions):
        raise UserError(f"--actions takes letters L R U D S (or .), got {args.actions!r}")
    device = pick_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, "action-dynamics", args.out)
    codec, models = load_models(ckpt, device)
    key = f"{args.world}/{args.method}"
    if key not in models:
        raise UserError(f"{args.checkpoint} has no {key} model (it holds {sorted(models)})")
    start, _ = make_env(args.world).reset(seed=args.seed)  # one real frame to start the dream from
    dreamer = Dreamer(args.world, models[key], codec, start, device)
    shown = [render(dreamer.image, 0, 0, args.scale)]
    if args.headless:
        for i, letter in enumerate(args.actions.upper(), start=1):
            shown.append(render(dreamer.step(LETTERS[letter]), i, LETTERS[letter], args.scale))
        out_dir = output_root(args.out) / "outputs"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"play_{args.world}.gif"
        gif = [Image.fromarray(f) for f in shown]
        gif[0].save(path, save_all=True, append_images=gif[1:], duration=250, loop=0)
        print(f"dreamed {len(shown) - 1} steps with {args.world}/{args.method}; wrote {path}")
        return
    import cv2

    title = f"dream: {args.world}/{args.method} (arrows/WASD move, space stays, q quits)"
    try:
        cv2.namedWindow(title)
    except cv2.error as e:
        raise UserError(NO_DISPLAY) from e
    step = 0
    while True:
        cv2.imshow(title, shown[-1][..., ::-1])  # OpenCV wants BGR
        k = cv2.waitKeyEx(0)
        if k in (ord("q"), 27) or k == -1:
            break
        if k in KEYS:
            step += 1
            shown.append(render(dreamer.step(KEYS[k]), step, KEYS[k], args.scale))
    cv2.destroyAllWindows()


if __name__ == "__main__":
    exit_on_user_error(main)

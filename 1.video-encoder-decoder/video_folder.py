"""Bring your own video: a folder of .mp4/.avi files or of image frames, read with OpenCV into the same
dataset schema as the simulated worlds, so train.py and validate.py take it with ``--data PATH``.

The schema (``data_utils.frame_features``), one row per frame:
    frames  Array3D (64, 64, 3) uint8   RGB; each frame centre-cropped to a square, then resized
    world   int64                       which source the frame came from: the index of the video in
                                        the folder's sorted file list (all image frames are one source)

Every source is split in time, deterministically: its first 80 % of frames train the codec, its last
20 % are held out. Neighbouring video frames are near copies, so picking held-out frames at random would
let the codec see almost every held-out frame during training; a later stretch of the video it never saw
is an honest test. The result is cached as a ``datasets.DatasetDict`` {"train", "heldout"} under data/,
keyed by the folder's file names, sizes and modification times, so an edited folder is read again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_utils import DATA_DIR, frame_features, save_dataset, to_dataset
from utils import UserError

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # a broken file is our one-line error, not ffmpeg's
import cv2  # noqa: E402  (after the line above, which must come before OpenCV loads ffmpeg)

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # silent: OpenCV's own warnings would add lines to our one-line errors

VIDEO_EXTS = (".mp4", ".avi")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
HELDOUT_FRACTION = 0.2  # the last 20 % of each source
MIN_FRAMES = 10  # fewer frames than this cannot train and test a codec


def square_resize(frame_bgr: np.ndarray, size: int) -> np.ndarray:
    """An OpenCV frame (H, W, 3) BGR uint8 -> (size, size, 3) RGB uint8: centre crop to a square (so
    shapes are not squashed), then shrink with area averaging (no aliasing on fine detail)."""
    h, w = frame_bgr.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = frame_bgr[y0 : y0 + side, x0 : x0 + side]
    small = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def read_video(path: Path, size: int, max_frames: int | None = None) -> np.ndarray:
    """The frames of a video file (all, or the first ``max_frames``) -> (n, size, size, 3) uint8 RGB;
    a file with no readable frame is a UserError."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while cap.isOpened() and (max_frames is None or len(frames) < max_frames):
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(square_resize(frame, size))
    finally:
        cap.release()
    if not frames:
        raise UserError(f"cannot read any frame from {path} (not a video OpenCV can decode?)")
    return np.stack(frames)


def read_images(paths: list[Path], size: int) -> np.ndarray:
    """Image files in name order -> (n, size, size, 3) uint8 RGB; an unreadable file is a UserError."""
    frames = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)  # (H, W, 3) BGR, or None when it cannot be read
        if img is None:
            raise UserError(f"cannot read the image {p}")
        frames.append(square_resize(img, size))
    return np.stack(frames)


def list_sources(folder: Path) -> tuple[list[Path], list[Path]]:
    """The videos and the image frames directly inside ``folder``, each sorted by name."""
    if not folder.is_dir():
        raise UserError(f"--data {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTS]
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    if not videos and not images:
        exts = ", ".join(VIDEO_EXTS + IMAGE_EXTS)
        raise UserError(f"--data {folder}: no video or image frames in it (expected files ending in {exts})")
    return videos, images


def split_in_time(n: int) -> int:
    """How many of a source's ``n`` frames train (the first ones); the rest, at least one, are held out."""
    return n - max(1, math.ceil(n * HELDOUT_FRACTION)) if n > 1 else n


def load_video_folder(folder, size: int = 64, data_dir: Path = DATA_DIR, quiet: bool = False):
    """Read ``folder`` once into {"train", "heldout"} frame datasets (schema above), cached under
    ``data_dir``; later calls load the cache unless a file in the folder changed.

    Returns:
        a ``datasets.DatasetDict`` with splits "train" and "heldout", columns frames and world.
    """
    import datasets

    folder = Path(folder).expanduser()
    videos, images = list_sources(folder)
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in videos + images]
    key = json.dumps(
        {"folder": str(folder.resolve()), "files": stamp, "size": size, "heldout": HELDOUT_FRACTION}
    )
    path = Path(data_dir) / f"video_{folder.resolve().name}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if path.exists():
        return datasets.load_from_disk(str(path))
    for p in videos:  # a file that does not open fails now, before the long read
        read_video(p, size, max_frames=1)
    bar = tqdm(videos, desc=f"reading {folder}", disable=quiet, file=sys.stdout)  # stderr: errors only
    sources = [read_video(p, size) for p in bar]
    if images:
        sources.append(read_images(images, size))  # a folder of frames is one more source
    n_total = sum(len(s) for s in sources)
    if n_total < MIN_FRAMES:
        raise UserError(f"--data {folder}: only {n_total} frames; at least {MIN_FRAMES} are needed")
    splits = {"train": {"frames": [], "world": []}, "heldout": {"frames": [], "world": []}}
    for src_idx, frames in enumerate(sources):  # frames: (n, size, size, 3)
        k = split_in_time(len(frames))
        for name, part in (("train", frames[:k]), ("heldout", frames[k:])):
            splits[name]["frames"].append(part)
            splits[name]["world"].append(np.full(len(part), src_idx, dtype=np.int64))
    if not splits["heldout"]["frames"] or sum(len(f) for f in splits["heldout"]["frames"]) == 0:
        raise UserError(f"--data {folder}: every video has a single frame, so none is left to hold out")
    features = frame_features(size)
    ds = datasets.DatasetDict(
        {
            name: to_dataset({k: np.concatenate(v) for k, v in cols.items()}, features)
            for name, cols in splits.items()
        }
    )
    save_dataset(ds, path)
    if not quiet:
        n_train, n_held = len(ds["train"]), len(ds["heldout"])
        print(f"{folder}: {n_train} training and {n_held} held-out frames, cached in {path}")
    return datasets.load_from_disk(str(path))

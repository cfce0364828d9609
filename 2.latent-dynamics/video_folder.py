"""Bring your own video: a folder of .mp4/.avi files or of image frames, read with OpenCV into the same
dataset schema as the simulated balls, so train.py and validate.py take it with ``--data PATH``.

Chapter 1's video_folder.py (1.video-encoder-decoder/video_folder.py), copied so this chapter stands
alone, and adapted from single frames to clips. The schema (``data_utils.video_features``), one row per
clip:
    frames  Array4D (T, 64, 64, 3) uint8   RGB; each frame centre-cropped to a square, then resized
    source  int64                          which source the clip was cut from: the index of the video
                                           in the folder's sorted file list (all image frames are one)

Every source is split in time, deterministically: its last 20 % of frames, and at least ``EVAL_LEN``
(one validation clip), are held out; the frames before them train. Neighbouring video frames are near
copies, so held-out clips picked at random would have been seen almost whole in training; a later
stretch of the video the model never saw is an honest test. Each part is cut into back-to-back clips
(training clips of train.py's --video-len frames, held-out clips of ``EVAL_LEN`` frames); frames left
over at the end of a part are dropped. The result is cached as a ``datasets.DatasetDict``
{"train", "heldout"} under data/, keyed by the folder's file names, sizes and modification times, so an
edited folder is read again.
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

from data_utils import DATA_DIR, save_dataset, to_dataset, video_features
from utils import UserError

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # a broken file is our one-line error, not ffmpeg's
import cv2  # noqa: E402  (after the line above, which must come before OpenCV loads ffmpeg)

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # silent: OpenCV's own warnings would add lines to our one-line errors

VIDEO_EXTS = (".mp4", ".avi")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
HELDOUT_FRACTION = 0.2  # the last 20 % of each source ...
EVAL_LEN = 23  # ... and at least one held-out clip: validate.py's 3 context frames + 20 dreamed ones


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
    """How many of a source's ``n`` frames train (the first ones); the rest are held out."""
    return n - max(math.ceil(n * HELDOUT_FRACTION), EVAL_LEN)


def cut_clips(frames: np.ndarray, length: int) -> np.ndarray:
    """(n, H, W, 3) -> (n // length, length, H, W, 3): back-to-back clips, the leftover frames dropped."""
    k = len(frames) // length
    return frames[: k * length].reshape(k, length, *frames.shape[1:])


def load_video_folder(folder, train_len: int, size: int = 64, data_dir: Path | None = None, quiet=False):
    """Read ``folder`` once into {"train", "heldout"} clip datasets (schema above), cached under
    ``data_dir`` (default: data/); later calls load the cache unless a file in the folder changed.

    Args:
        train_len: frames per training clip (train.py's --video-len); held-out clips have ``EVAL_LEN``.
    Returns:
        a ``datasets.DatasetDict`` with splits "train" and "heldout", columns frames and source.
    """
    import datasets

    folder = Path(folder).expanduser()
    videos, images = list_sources(folder)
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in videos + images]
    key = json.dumps({"folder": str(folder.resolve()), "files": stamp, "size": size, "train_len": train_len,
                      "eval_len": EVAL_LEN, "heldout": HELDOUT_FRACTION})  # fmt: skip
    name = f"video_{folder.resolve().name}_len{train_len}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    path = Path(data_dir or DATA_DIR) / name
    if path.exists():
        return datasets.load_from_disk(str(path))
    for p in videos:  # a file that does not open fails now, before the long read
        read_video(p, size, max_frames=1)
    bar = tqdm(videos, desc=f"reading {folder}", disable=quiet, file=sys.stdout)  # stderr: errors only
    sources = [(p.name, read_video(p, size)) for p in bar]
    if images:
        sources.append((f"the {len(images)} image frames", read_images(images, size)))  # one more source
    splits = {"train": {"frames": [], "source": []}, "heldout": {"frames": [], "source": []}}
    for src_idx, (src_name, frames) in enumerate(sources):  # frames: (n, size, size, 3)
        k = split_in_time(len(frames))
        if k < train_len:  # too short for one training clip after the held-out end: the context is longer
            need = train_len + EVAL_LEN
            raise UserError(
                f"--data {folder}: {src_name} has {len(frames)} frames; each source needs at least {need}"
                f" ({train_len} for a training clip, the last {EVAL_LEN} or 20 % held out)"
            )
        for split, part, length in (("train", frames[:k], train_len), ("heldout", frames[k:], EVAL_LEN)):
            clips = cut_clips(part, length)  # (c, length, size, size, 3)
            splits[split]["frames"].append(clips)
            splits[split]["source"].append(np.full(len(clips), src_idx, dtype=np.int64))
    lengths = {"train": train_len, "heldout": EVAL_LEN}
    ds = datasets.DatasetDict(
        {
            split: to_dataset(
                {k: np.concatenate(v) for k, v in cols.items()}, video_features(lengths[split], size)
            )
            for split, cols in splits.items()
        }
    )
    save_dataset(ds, path)
    if not quiet:
        n_train, n_held = len(ds["train"]), len(ds["heldout"])
        print(f"{folder}: {n_train} training clips of {train_len} frames and {n_held} held-out clips of"
              f" {EVAL_LEN}, cached in {path}")  # fmt: skip
    return datasets.load_from_disk(str(path))

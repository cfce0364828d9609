"""Bring your own video: a folder of videos or frames -> clip datasets, --data end to end, bad input.

The test video is written here with cv2.VideoWriter (no binary file in the repository): an orange
square sliding over a dark grey background.
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_folder import EVAL_LEN, load_video_folder

from utils import UserError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder: the shared helpers
from script_helpers import assert_one_line_error, copy_chapter, run  # noqa: E402


def frame(t: int, h: int = 48, w: int = 80) -> np.ndarray:
    """Frame t (h, w, 3) BGR uint8: a 12-px orange square on dark grey, its left edge at x = 16 + 2t
    (wrapping every 18 frames), inside the 48-px centre crop (x 16-64) the dataset keeps."""
    img = np.full((h, w, 3), 40, np.uint8)
    x0 = 16 + (2 * t) % 36
    img[18:30, x0 : x0 + 12] = (40, 180, 250)  # orange in BGR
    return img


def write_video(path: Path, n: int) -> None:
    """An n-frame 80x48 MJPG .avi (the codec every OpenCV build can write)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 48))
    for t in range(n):
        writer.write(frame(t))
    writer.release()


def test_a_folder_becomes_training_and_held_out_clips_split_in_time(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "a.avi", 60)  # last 23 frames held out (more than 20 %), 37 -> 2 clips of 16
    for t in range(40):  # image frames in the same folder are one more source: 17 -> 1 clip, 23 held out
        cv2.imwrite(str(videos / f"frame_{t:03d}.png"), frame(t))
    data = load_video_folder(videos, train_len=16, data_dir=tmp_path / "data", quiet=True)
    train, held = data["train"], data["heldout"]
    assert (len(train), len(held)) == (2 + 1, 1 + 1)
    assert train.features["frames"].shape == (16, 64, 64, 3) and train.features["frames"].dtype == "uint8"
    assert held.features["frames"].shape == (EVAL_LEN, 64, 64, 3)
    held_np = held.with_format("numpy", dtype=np.uint8)[:]
    assert list(held_np["source"]) == [0, 1]  # source 0: the video, 1: the image frames
    last = held_np["frames"][1, -1]  # image frame 39: square x 22-34 -> 6-18 in the crop -> 8-24 at 64 px
    assert last[32, 16].tolist() == [250, 180, 40] and last[5, 5].tolist() == [40, 40, 40]  # RGB, not BGR
    (cache,) = (tmp_path / "data").iterdir()
    again = load_video_folder(videos, train_len=16, data_dir=tmp_path / "data", quiet=True)
    assert again["train"].num_rows == 3 and len(list((tmp_path / "data").iterdir())) == 1  # the cache
    write_video(videos / "a.avi", 80)  # an edited folder is read again, into a new cache
    assert (
        load_video_folder(videos, train_len=16, data_dir=tmp_path / "data", quiet=True)["train"].num_rows == 4
    )
    assert len(list((tmp_path / "data").iterdir())) == 2 and cache.exists()


@pytest.mark.parametrize("bad", ["missing", "empty", "unreadable", "too-short"])
def test_bad_video_folders_are_refused_by_name(tmp_path, bad):
    folder = tmp_path / "videos"
    if bad != "missing":
        folder.mkdir()
    if bad == "unreadable":
        (folder / "broken.mp4").write_bytes(b"not a video")
    if bad == "too-short":
        write_video(folder / "short.avi", 30)  # shorter than a training clip plus a held-out clip
    words = {
        "missing": "no such folder",
        "empty": "no video",
        "unreadable": "broken.mp4",
        "too-short": "short.avi has 30 frames; each source needs at least 39",
    }
    with pytest.raises(UserError, match=words[bad]) as e:
        load_video_folder(folder, train_len=16, data_dir=tmp_path / "data", quiet=True)
    assert str(folder) in str(e.value) and "\n" not in str(e.value)


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A fresh copy of the chapter's code (no data, checkpoints or outputs)."""
    return copy_chapter(tmp_path_factory.mktemp("chapter2_video") / "2.latent-dynamics")


def test_train_and_validate_on_your_own_video(chapter_copy, tmp_path):
    videos, out = tmp_path / "my videos", tmp_path / "runs"
    videos.mkdir()
    write_video(videos / "clip.avi", 60)
    flags = ["--data", str(videos), "--quick", "--threads", "1", "--out", str(out)]
    train = run(chapter_copy, "train.py", *flags)
    assert train.returncode == 0, train.stderr[-2000:]
    assert "2 training videos of 16 frames" in train.stdout and f"--data '{videos}'" in train.stdout
    val = run(chapter_copy, "validate.py", *flags)
    assert val.returncode == 0, val.stderr[-2000:]
    assert (
        "your own video: no balls to track" in val.stdout and "targets none for your own video" in val.stdout
    )
    report = json.loads((out / "outputs" / "metrics.json").read_text())
    assert report["data"] == str(videos) and report["passed"] is None and report["targets"] == {}
    assert isinstance(report["metrics"]["mse_h10_over_copy_last"], float)
    assert not any(k.startswith("ball_err") for k in report["metrics"])  # no balls on your own video
    assert (out / "outputs" / "rollouts.gif").stat().st_size > 0  # the dreams, beside the truth
    # --out routes everything: checkpoints, outputs and the cached clips; nothing in the chapter folder
    assert (out / "checkpoints" / "dynamics.pt").exists() and any((out / "data").iterdir())
    assert not any((chapter_copy / d).exists() for d in ("data", "checkpoints", "outputs"))


def test_a_bad_video_folder_is_one_line_from_the_command_line(chapter_copy, tmp_path):
    (tmp_path / "videos").mkdir()  # empty
    out = run(chapter_copy, "train.py", "--data", str(tmp_path / "videos"), "--out", str(tmp_path / "runs"))
    assert_one_line_error(out, str(tmp_path / "videos"), "no video or image frames")
